"""The stage 5 view over the registry the session's notebook 05 filled, pressed as a user
would, against a real service started with `workbench serve` (launch.start)."""

from __future__ import annotations

import pytest

from workbench.data import load_version
from workbench.deploy import launch, registry
from workbench.widgets.deploy import RegistryView


@pytest.fixture(scope="module")
def served(executed, tmp_path_factory):
    executed("05_deploy")
    name = registry.resolve("digits").name
    service = launch.start(f"{name}@champion", log=tmp_path_factory.mktemp("svc") / "log")
    yield name, service, load_version(executed.run_dir)
    assert service.stop() == 0  # SIGTERM: a clean exit


def test_the_view_lists_versions_and_asks_the_service(served):
    name, service, version = served
    x, y = version.split("test")
    view = RegistryView(name, url=service.url, example=x[1])
    assert "champion" in view._table.value and "complete" in view._table.value
    assert "created" not in view._table.value  # no times: committed outputs stay the same
    answer = view.test_request()
    champion = registry.aliases(name)["champion"]
    assert answer.startswith(f"champion (version {champion}) answered: {int(y[1])}")
    assert answer in view._answer.value


def test_buttons_report_what_they_could_not_do(served):
    name, _, _ = served
    view = RegistryView(name)
    before = registry.aliases(name)
    assert "challenger" not in before  # 05 promoted its only registration
    assert view.promote().startswith("ServingError:")  # no challenger to promote
    assert registry.aliases(name) == before  # nothing moved
    assert view.test_request().startswith("No service or example given")
