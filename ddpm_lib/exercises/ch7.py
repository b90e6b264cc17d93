"""The checks of chapter 7's exercises (see :mod:`ddpm_lib.exercises`)."""
