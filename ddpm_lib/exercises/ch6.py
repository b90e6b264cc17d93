"""The checks of chapter 6's exercises (see :mod:`ddpm_lib.exercises`)."""
