"""The stage-1 view updates the card live and shows errors instead of raising."""

from workbench.widgets.identify import ProblemView


def test_problem_view_follows_choices():
    view = ProblemView()
    assert "softmax" in view.html and "Baseline to beat" in view.html
    view.set(task="multilabel")
    assert "sigmoid" in view.html and "closed_loop" in view.html
    view.set(task="regression")
    assert "Not this task" in view.html and "numeric target" in view.html
    view.set(modality="tabular")
    assert view.dataset == "sklearn:breast_cancer"
    view.set(task="binary")
    assert "Dense(1) -&gt; sigmoid" in view.html
    view.close()
