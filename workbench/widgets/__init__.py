"""Thin ipywidgets views, one module per stage: state in, call a pure workbench function, render."""
