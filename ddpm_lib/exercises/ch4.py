"""The checks of chapter 4's exercises (see :mod:`ddpm_lib.exercises`)."""
