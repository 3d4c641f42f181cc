"""The kinds of problem the workbench knows: input modalities and task types.

Stage 1 (identify) derives a model's head from them and stage 3 (data) builds targets for
them; both read the names from here, so there is one list, in one order.
"""

MODALITIES = ("image", "tabular")
TASKS = ("binary", "multiclass", "multilabel", "regression")
