"""Figure 3's serving pipeline through the running service: every task in one request, one
task per TF Serving signature, a subset by the v2 `outputs` list, the pair task's own signature,
a component swap without restart and an incompatible component refused at load.

A tiny amalgam trained 2 epochs on the smoke digits, its task heads fitted and everything saved
as components by `workbench.amalgam.assemble` (the representations as ONNX), published in TF
Serving's folder layout; one real uvicorn service (in a thread, on a free
loopback port) serves it, and the MLflow registry serves the same version folder.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from conftest import Service

from workbench.amalgam.assemble import assemble, encode_splits, fit_heads, pair_head, task_data
from workbench.amalgam.pipeline import (
    load_component,
    load_pipeline,
    publish_pipeline,
    read_manifest,
    save_component,
)
from workbench.deploy.repositories import FolderRepository
from workbench.deploy.service import create_app
from workbench.errors import ServingError

NAME = "amalgam"
SINGLE = ["neighbor_labels", "neighbor_distances", "ood_score", "ood", "probabilities",
          "predicted_class", "tags"]  # fmt: skip


@pytest.fixture(scope="module")
def built(tiny_amalgam):
    """Components of a trained tiny amalgam, a config, and its version 1 in TF Serving's layout."""
    base_run, version, card, model = tiny_amalgam
    run = base_run / "serving"
    data = task_data(version, card, seed=0)
    heads = fit_heads(encode_splits(model, data), data.y, card)
    heads["classes"] = {"temperature": 1.0}  # the swap below moves it to 3: softer
    config = assemble(run, model, version, heads)
    store = run / "components"
    base = run / "models"
    assert publish_pipeline(config, base, NAME) == "1"
    x = version.split("test")[0]
    return {"run": run, "store": store, "config": config, "base": base, "x": x}


@pytest.fixture(scope="module")
def client(built):
    app = create_app(FolderRepository(built["base"]), poll_seconds=0, request_timeout=10.0)
    with Service(app) as service, httpx.Client(base_url=service.url, timeout=30) as c:
        yield c


def image(built, i: int) -> list:
    return built["x"][i].tolist()


def v2(built, names=("images",), rows=(0,), outputs=None):
    tensors = [
        {"name": n, "shape": [len(rows), 8, 8, 1], "datatype": "FP32",
         "data": [image(built, r + 3 * k) for r in rows]}
        for k, n in enumerate(names)
    ]  # fmt: skip
    return {"inputs": tensors, **({"outputs": [{"name": o} for o in outputs]} if outputs else {})}


def status(client) -> dict:
    return client.get("/admin/status").json()["models"][NAME]


# -- one request, every task -------------------------------------------------------------------
def test_serving_default_returns_every_single_image_task(built, client):
    r = client.post(f"/v1/models/{NAME}:predict", json={"instances": [image(built, 0)]})
    assert r.status_code == 200, r.text
    [row] = r.json()["predictions"]
    assert list(row) == SINGLE
    expected = load_pipeline(built["config"])({"images": built["x"][:1]})
    for name in SINGLE:
        np.testing.assert_allclose(row[name], expected[name][0], atol=1e-5)
    assert len(row["neighbor_labels"]) == 5 and len(row["tags"]) == 4
    np.testing.assert_allclose(sum(row["probabilities"]), 1.0, atol=1e-5)
    assert row["predicted_class"] == int(np.argmax(row["probabilities"]))
    answer = client.post(f"/v2/models/{NAME}/infer", json=v2(built, rows=(0, 1))).json()
    types = {o["name"]: (o["datatype"], o["shape"]) for o in answer["outputs"]}
    assert types == {
        "neighbor_labels": ("INT64", [2, 5]), "neighbor_distances": ("FP32", [2, 5]),
        "ood_score": ("FP32", [2]), "ood": ("INT64", [2]), "probabilities": ("FP32", [2, 10]),
        "predicted_class": ("INT64", [2]), "tags": ("INT64", [2, 4]),
    }  # fmt: skip


def test_signature_name_picks_one_task_and_metadata_lists_every_signature(built, client):
    body = {"instances": [image(built, 0)], "signature_name": "classes"}
    [row] = client.post(f"/v1/models/{NAME}:predict", json=body).json()["predictions"]
    assert sorted(row) == ["predicted_class", "probabilities"]
    one = client.post(f"/v1/models/{NAME}:predict", json={**body, "signature_name": "tags"})
    assert np.array(one.json()["predictions"]).shape == (1, 4)  # one output loses its name
    meta = client.get(f"/v1/models/{NAME}/metadata").json()["metadata"]["signature_def"]
    defs = {
        k: (sorted(v["inputs"]), sorted(v["outputs"])) for k, v in meta["signature_def"].items()
    }
    assert defs == {
        "serving_default": (["images"], sorted(SINGLE)),
        "search": (["images"], ["neighbor_distances", "neighbor_labels"]),
        "ood": (["images"], ["ood", "ood_score"]),
        "classes": (["images"], ["predicted_class", "probabilities"]),
        "tags": (["images"], ["tags"]),
        "pair": (["a", "b"], ["same"]),
    }
    unknown = client.post(f"/v1/models/{NAME}:predict", json={**body, "signature_name": "x"})
    assert unknown.status_code == 400 and "'classes', 'ood', 'pair'" in unknown.json()["error"]


def test_v2_outputs_select_a_subset_in_the_order_asked(built, client):
    body = v2(built, outputs=["probabilities", "ood_score"])
    outputs = client.post(f"/v2/models/{NAME}/infer", json=body).json()["outputs"]
    assert [o["name"] for o in outputs] == ["probabilities", "ood_score"]
    wrong = client.post(f"/v2/models/{NAME}/infer", json=v2(built, outputs=["same"]))
    assert wrong.status_code == 400
    assert "Unknown output(s) ['same'] in 'outputs'; the model gives" in wrong.json()["error"]
    assert "for the inputs ['images']" in wrong.json()["error"]


def test_the_pair_signature_answers_for_two_digits(built, client):
    a, b = built["x"][:3], built["x"][3:6]
    expected = load_pipeline(built["config"]).functions["pair"]({"a": a, "b": b})["same"]
    rows = [{"a": image(built, k), "b": image(built, k + 3)} for k in range(3)]
    tf = client.post(
        f"/v1/models/{NAME}:predict", json={"instances": rows, "signature_name": "pair"}
    )
    assert tf.status_code == 200, tf.text
    np.testing.assert_allclose(tf.json()["predictions"], expected, atol=1e-5)
    columns = {"a": a.tolist(), "b": b.tolist()}
    body = {"inputs": columns, "signature_name": "pair"}
    same = client.post(f"/v1/models/{NAME}:predict", json=body).json()["outputs"]
    np.testing.assert_allclose(same, expected, atol=1e-5)
    answer = client.post(f"/v2/models/{NAME}/infer", json=v2(built, ("a", "b"), (0, 1, 2)))
    [out] = answer.json()["outputs"]
    assert (out["name"], out["shape"]) == ("same", [3])
    np.testing.assert_allclose(out["data"], expected, atol=1e-5)
    meta = client.get(f"/v2/models/{NAME}").json()
    assert [t["name"] for t in meta["inputs"]] == ["images", "a", "b"]
    assert meta["platform"] == "workbench_pipeline"
    assert meta["parameters"]["signature.pair"] == "inputs a, b; outputs same"
    unnamed = client.post(f"/v1/models/{NAME}:predict", json={"instances": rows})
    assert unnamed.status_code == 400
    assert unnamed.json()["error"].endswith(
        " Send \"signature_name\": \"pair\" for the inputs ['a', 'b']."
    )
    mixed = client.post(f"/v2/models/{NAME}/infer", json=v2(built, ("images", "a")))
    assert mixed.status_code == 400
    assert (
        "the model takes ['images'] (serving_default) or ['a', 'b'] (pair)"
        in (mixed.json()["error"])
    )


# -- swapping components -----------------------------------------------------------------------
def test_a_new_task3_component_swaps_in_without_restart_and_leaves_the_others(built, client):
    before = client.post(f"/v2/models/{NAME}/infer", json=v2(built)).json()
    pair_before = client.post(f"/v2/models/{NAME}/infer", json=v2(built, ("a", "b"))).json()
    hotter = save_component(built["store"], "classes", "calibrate",
                            numbers={"temperature": 3.0}, inputs={"logits": [10]})  # fmt: skip
    config = json.loads(built["config"].read_text())
    old = config["tasks"]["classes"]["component"]
    config["tasks"]["classes"]["component"] = hotter.name  # the one edit
    built["config"].write_text(json.dumps(config, indent=2))
    assert publish_pipeline(built["config"], built["base"], NAME) == "2"
    [change] = client.post("/admin/reload").json()["changes"]
    after = client.post(f"/v2/models/{NAME}/infer", json=v2(built)).json()
    pair_after = client.post(f"/v2/models/{NAME}/infer", json=v2(built, ("a", "b"))).json()
    assert change == {"model": NAME, "label": "champion", "from": "1", "to": "2",
                      "result": "swapped"}  # fmt: skip
    assert (before["model_version"], after["model_version"]) == ("1", "2")
    was, now = ({o["name"]: np.array(o["data"]) for o in r["outputs"]} for r in (before, after))
    assert now["probabilities"].max() < was["probabilities"].max()  # softer at T = 3
    for name in set(SINGLE) - {"probabilities"}:  # the class too: T never changes the order
        np.testing.assert_array_equal(now[name], was[name])
    assert pair_after["outputs"] == pair_before["outputs"]
    loaded = status(client)["loaded"]["2"]["pipeline"]
    assert loaded["loaded"] == [hotter.name]  # only the new component was read from disk
    assert len(loaded["shared"]) == 5 and old not in loaded["shared"]
    copies = [built["base"] / NAME / v / "components" / loaded["components"]["representations"]
              for v in ("1", "2")]  # fmt: skip
    assert load_component(copies[0]) is load_component(copies[1])  # one object per version


def test_an_incompatible_component_is_refused_and_the_old_pipeline_keeps_serving(built, client):
    wide = save_component(built["store"], "pair", "pair", model=pair_head(16))
    config = json.loads(built["config"].read_text())
    config["tasks"]["pair"]["component"] = wide.name
    bad = built["run"] / "incompatible.json"
    bad.write_text(json.dumps(config))
    reason = (f"task 'pair' component {wide.name} (kind pair) takes input 'a' float32 [-1, 16], "
              "but it is fed 'low_latent' of representations@")  # fmt: skip
    with pytest.raises(ServingError, match=r"\[-1, 8\]\. Wire it to a representation"):
        publish_pipeline(bad, built["base"], NAME)  # checked before it is written
    serving = status(client)["labels"]["champion"]["serves"]
    version = publish_pipeline(bad, built["base"], NAME, check=False)  # the service checks too
    [change] = client.post("/admin/reload").json()["changes"]
    answer = client.post(f"/v2/models/{NAME}/infer", json=v2(built, ("a", "b")))
    admin = status(client)
    assert change["result"] == "refused" and change["to"] == version
    assert reason in change["reason"] and f"version {serving} keeps serving" in change["reason"]
    assert answer.status_code == 200 and answer.json()["model_version"] == serving
    assert admin["labels"]["champion"]["serves"] == serving
    assert reason in admin["labels"]["champion"]["refused"][version]
    assert reason in admin["failed"][version]


def test_a_component_changed_after_saving_is_refused(built, tmp_path):
    import shutil

    saved = built["store"] / json.loads(built["config"].read_text())["tasks"]["tags"]["component"]
    assert read_manifest(saved)["kind"] == "tags"
    copy = tmp_path / saved.name
    shutil.copytree(saved, copy)
    np.savez(copy / "numbers.npz", thresholds=np.zeros(4))  # edited by hand
    with pytest.raises(ServingError, match="it changed after it was saved"):
        load_component(copy)


def test_a_published_pipeline_serves_from_the_mlflow_registry_too(built):
    """The version folder registered as a model version: the registry's verified copy opens
    as the same pipeline (the session's temporary tracking store)."""
    from workbench.deploy import registry
    from workbench.deploy.export import open_runner
    from workbench.deploy.repositories import RegistryRepository

    registered = registry.register(built["base"] / NAME / "1", name="amalgam-pipeline")
    folder = RegistryRepository(["amalgam-pipeline"]).folder("amalgam-pipeline", registered.version)
    x = built["x"][:2]
    local = load_pipeline(built["base"] / NAME / "1" / "pipeline.json")
    served = open_runner(folder)
    for name in SINGLE:
        np.testing.assert_array_equal(served({"images": x})[name], local({"images": x})[name])
    assert served.about["pipeline"]["loaded"] == []  # the same components: loaded once
    assert {c.ref for c in served.components.values()} == {c.ref for c in local.components.values()}
