"""The checks of chapter 5's exercises (see :mod:`ddpm_lib.exercises`)."""
