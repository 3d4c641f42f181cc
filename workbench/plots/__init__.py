"""Figures for every stage: matplotlib only, titles and axis labels always, one colour per class."""
