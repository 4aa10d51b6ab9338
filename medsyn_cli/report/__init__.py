"""``medsyn report``: one self-contained HTML page of a training run (see docs/usage.md).

``run.py`` reads the run directory, ``figures.py`` draws the curves, ``translation.py`` shows a
translation model at work on real slices, ``sections.py`` assembles the sections (plugins add theirs
through ``register_report_sections``), ``html.py`` writes the page and ``build.py`` ties them up.
"""
