"""The checks of chapter 1's exercises (see :mod:`ddpm_lib.exercises`)."""
