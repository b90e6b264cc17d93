"""The checks of chapter 3's exercises (see :mod:`ddpm_lib.exercises`)."""
