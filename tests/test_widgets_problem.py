"""The stage-1 view updates the card live and shows errors instead of raising."""

from workbench.widgets.problem import ProblemView


def test_problem_view_follows_choices():
    view = ProblemView()
    assert "softmax" in view._card.value and "Baseline to beat" in view._card.value
    view._task.value = "multilabel"
    assert "sigmoid" in view._card.value and "closed_loop" in view._card.value
    view._task.value = "regression"
    assert "Not this task" in view._card.value and "numeric target" in view._card.value
    view._modality.value = "tabular"
    assert view._dataset.value == "sklearn:breast_cancer"
    view._task.value = "binary"
    assert "Dense(1) -&gt; sigmoid" in view._card.value
    view.close()
