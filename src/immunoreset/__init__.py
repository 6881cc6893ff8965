"""immunoreset — point-of-care CD19 CAR T in autoimmune disease, from apheresis to report."""

__version__ = "0.1.0"
