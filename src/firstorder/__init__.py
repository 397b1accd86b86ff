"""firstorder: first-order optimizers of a student's notes, made executable."""
