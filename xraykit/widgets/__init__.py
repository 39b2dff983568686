"""ipywidgets for the course: quizzes, answer checks, the trace explorer, the sampling
playground and the map explorer (the optional ``widgets`` extra)."""
