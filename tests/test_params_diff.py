"""The parameter-mismatch message: what really differs comes first, tuples and lists are the same value."""

from __future__ import annotations

from vfx.store.layout import new_manifest
from vfx.store.params_diff import describe_difference, flatten


def _manifest_as_read(kind, params):
    """A manifest as a rerun reads it back: through JSON, so its tuples are lists."""
    import json

    return json.loads(json.dumps(new_manifest(kind, params), default=str))


def test_tuples_and_lists_with_the_same_content_are_not_a_difference_at_any_depth():
    params = {"models": [{"name": "msnet_r50", "input_spec": {"mean": (0.45, 0.45), "size": (224, 224)}}],
              "clips": {"segments": 8}, "motion_maps": False}  # fmt: skip
    manifest = _manifest_as_read("features", params)
    assert flatten(manifest["params"]) == flatten(params)
    asked = dict(params, motion_maps=True)
    assert describe_difference(manifest, "features", asked) == "motion_maps: False -> True"


def test_changed_values_come_before_added_and_removed_keys_and_the_rest_is_counted():
    old = {"a": 1, "b": {"x": 1}, "gone": 3, "z": 1}
    new = {"a": 1, "b": {"x": 2}, "extra": 4, "z": 2, "models": [{"name": "i3d_rgb"}, {"name": "i3d_flow"}]}
    text = describe_difference(_manifest_as_read("k", old), "k", new)
    assert text == "b.x: 1 -> 2, z: 1 -> 2, added extra=4, added models[0].name='i3d_rgb', and 2 more"
    full = describe_difference(_manifest_as_read("k", old), "k", new, limit=10)
    assert full.endswith("added models[1].name='i3d_flow', removed gone=3")


def test_another_kind_of_store_is_named():
    assert describe_difference(_manifest_as_read("frames", {}), "flow", {}) == "it is a frames store, not flow"
