"""YAML configuration: round trip, every error with its message, the seed's YAML files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bandselect.errors import ConfigError, FileFormatError, PipelineError
from bandselect.pipeline import (
    Node,
    Pipeline,
    PortSpec,
    available_nodes,
    load_yaml,
    pipeline_from_config,
    register_node,
)

SEED_YAML = Path(__file__).resolve().parents[3] / "shared" / "spec" / "seed_yaml"
CUBE = ("B", "H", "W", "C")


@register_node(name="ConfigTestOffset")
class Offset(Node):
    INPUT_PORTS = (PortSpec("cube", torch.float32, CUBE),)
    OUTPUT_PORTS = (
        PortSpec("cube", torch.float32, CUBE),
        PortSpec("rgb", torch.float32, ("B", "H", "W", 3)),
        PortSpec("flag", torch.bool, ("B", "H", "W", 1)),
    )

    def __init__(self, offset: float, bands: tuple[int, ...] = (0, 1, 2)) -> None:
        if not isinstance(offset, int | float):
            raise ConfigError("offset", expected="a number", found=repr(offset), fix="pass offset: 1.0")
        super().__init__(offset=offset, bands=tuple(bands))
        self.offset = float(offset)
        self.bands = tuple(bands)

    def forward(self, cube: torch.Tensor) -> dict[str, torch.Tensor]:
        shifted = cube + self.offset
        return {"cube": shifted, "rgb": shifted[..., list(self.bands)], "flag": shifted[..., :1] > 0}


@register_node(name="ConfigTestSum")
class Sum(Node):
    INPUT_PORTS = (
        PortSpec("cube", torch.float32, CUBE),
        PortSpec("one", torch.float32, ("B", "H", "W", 1), optional=True),
    )
    OUTPUT_PORTS = (PortSpec("total", torch.float32, ("B", "H", "W", 1)),)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)

    def forward(self, cube: torch.Tensor, one: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"total": cube.sum(dim=-1, keepdim=True)}


@register_node(name="ConfigTestSumScaled")
class SumScaled(Sum):
    """The seed's custom-selector pattern: own parameter, the rest forwarded with **kwargs."""

    def __init__(self, scale: float = 1.0, **kwargs: object) -> None:
        super().__init__(scale=scale, **kwargs)
        self.scale = scale


@register_node(name="ConfigTestRGBSink")
class RGBSink(Node):
    """Stands in for the seed's undefined ``adaclip`` node: it takes an ``rgb_input``."""

    INPUT_PORTS = (PortSpec("rgb_input", torch.float32, ("B", "H", "W", 3)),)
    OUTPUT_PORTS = (PortSpec("mean", torch.float32, ()),)

    def forward(self, rgb_input: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mean": rgb_input.mean()}


GOOD = """
nodes:
  shift:
    type: ConfigTestOffset
    config:
      offset: 1.5
      bands: [2, 1, 0]
  total:
    type: ConfigTestSum
connections:
  - [data.cube, shift.cube]
  - [shift.cube, total.cube]
"""


def test_yaml_round_trip_and_outputs(tmp_path) -> None:
    pipeline = Pipeline.from_yaml(GOOD)
    assert pipeline.nodes["shift"].bands == (2, 1, 0)
    text = pipeline.to_yaml()
    assert "- [data.cube, shift.cube]" in text
    assert load_yaml(text) == {
        "nodes": {
            "shift": {"type": "ConfigTestOffset", "config": {"offset": 1.5, "bands": [2, 1, 0]}},
            "total": {"type": "ConfigTestSum", "config": {}},
        },
        "connections": [["data.cube", "shift.cube"], ["shift.cube", "total.cube"]],
    }
    again = Pipeline.from_yaml(text)
    assert again.to_yaml() == text
    cube = torch.from_numpy(np.random.default_rng(0).random((1, 2, 3, 4), dtype=np.float32))
    expected = (cube.numpy() + 1.5).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(again.run(cube=cube)["total"]["total"].numpy(), expected, rtol=1e-6)
    path = tmp_path / "p.yaml"
    path.write_text(text)
    assert Pipeline.from_yaml(path).to_yaml() == text
    assert Pipeline.from_yaml(str(path)).to_yaml() == text


def _error(text: str, kind: type[Exception] = ConfigError) -> str:
    with pytest.raises(kind) as info:
        Pipeline.from_yaml(text)
    return str(info.value)


def test_unknown_type_lists_close_matches() -> None:
    message = _error("nodes:\n  shift:\n    type: ConfigTestOfset\n    config: {offset: 1}\n")
    assert "node 'shift': unknown node type 'ConfigTestOfset'" in message
    assert "did you mean 'ConfigTestOffset'" in message


def test_unknown_config_key_names_accepted_keys() -> None:
    text = "nodes:\n  shift:\n    type: ConfigTestOffset\n    config: {offset: 1, bandz: [0, 1, 2]}\n"
    message = _error(text)
    assert "unknown config key 'bandz' for node 'shift' (ConfigTestOffset)" in message
    assert "keys among ['bands', 'offset']" in message
    assert "did you mean 'bands'" in message


def test_config_keys_follow_kwargs_to_base_class() -> None:
    pipeline = Pipeline.from_yaml("nodes:\n  s:\n    type: ConfigTestSumScaled\n    config: {scale: 2.0}\n")
    assert pipeline.nodes["s"].config == {"scale": 2.0}
    # Sum's **kwargs ends at Node: no named keys beyond 'scale'
    text = "nodes:\n  s:\n    type: ConfigTestSumScaled\n    config: {x: 1}\n"
    assert "keys among ['scale']" in _error(text)


def test_missing_required_key_and_constructor_errors() -> None:
    message = _error("nodes:\n  shift:\n    type: ConfigTestOffset\n")
    assert "node 'shift' (ConfigTestOffset) is missing required config key(s) ['offset']" in message
    with pytest.raises(ConfigError, match="offset: expected a number") as info:
        Pipeline.from_yaml("nodes:\n  shift:\n    type: ConfigTestOffset\n    config: {offset: abc}\n")
    assert "while building node 'shift' of type ConfigTestOffset" in info.value.__notes__[0]


def test_unknown_port() -> None:
    message = _error(GOOD + "  - [shift.cubes, total.one]\n", PipelineError)
    assert "connection #3 [shift.cubes, total.one]" in message
    assert "unknown output port 'shift.cubes' (Offset)" in message
    assert "did you mean 'cube'? check" in message


def test_cycle() -> None:
    text = """
nodes:
  a: {type: ConfigTestOffset, config: {offset: 1}}
  b: {type: ConfigTestOffset, config: {offset: 1}}
connections:
  - [a.cube, b.cube]
  - [b.cube, a.cube]
"""
    message = _error(text, PipelineError)
    assert "connection #2 [b.cube, a.cube]" in message
    assert "cycle a → b → a" in message


def test_dtype_and_shape_mismatch() -> None:
    message = _error(GOOD + "  - [shift.flag, total.one]\n", PipelineError)
    assert "cannot connect shift.flag → total.one: expected dtype float32, found dtype bool" in message
    message = _error(GOOD + "  - [shift.rgb, total.one]\n", PipelineError)
    assert "expected shape ('B', 'H', 'W', 1), found shape ('B', 'H', 'W', 3)" in message


def test_connection_to_undefined_node() -> None:
    message = _error(GOOD + "  - [total.total, rx.data]\n", PipelineError)
    assert "connection #3 [total.total, rx.data]: node 'rx' is not defined" in message
    assert "add a node definition named 'rx'" in message
    # ... and how to supply it instead, naming the port the node needs.
    assert "expected a node 'rx' with an input port 'data'" in message
    assert "or supply the node when loading: Pipeline.from_yaml(..., nodes={'rx': NodeType(...)})" in message
    assert "nodes={'rx': {'type': 'NodeType', 'config': {...}}}" in message
    typo = _error(GOOD + "  - [totl.total, shift.cube]\n", PipelineError)
    assert "node 'totl' is not defined" in typo and "did you mean 'total'?" in typo


SINK = GOOD + "  - [shift.rgb, sink.rgb_input]\n  - [shift.rgb, sink_2.rgb_input]\n"


def test_nodes_supplies_what_the_yaml_connects_to_but_does_not_define() -> None:
    ready = RGBSink()
    pipeline = Pipeline.from_yaml(SINK, nodes={"sink_2": {"type": "ConfigTestRGBSink"}, "sink": ready})
    assert pipeline.nodes["sink"] is ready  # a ready node is used as is
    assert type(pipeline.nodes["sink_2"]) is RGBSink  # a definition is built like one in the file
    # Added after the defined nodes, in the order the connections first name them.
    assert list(pipeline.nodes) == ["shift", "total", "sink", "sink_2"]
    assert pipeline.source_of("sink", "rgb_input") == ("shift", "rgb")
    cube = torch.from_numpy(np.random.default_rng(0).random((1, 2, 3, 4), dtype=np.float32))
    out = pipeline.run(cube=cube)
    torch.testing.assert_close(out["sink"]["mean"], (cube[..., [2, 1, 0]] + 1.5).mean())
    # From then on the YAML defines them: the written pipeline loads without nodes=.
    again = Pipeline.from_yaml(pipeline.to_yaml())
    assert again.to_config() == pipeline.to_config()
    assert again.to_config()["nodes"]["sink"] == {"type": "ConfigTestRGBSink", "config": {}}
    same = pipeline_from_config(load_yaml(SINK), nodes={"sink": RGBSink(), "sink_2": RGBSink()})
    assert same.to_config() == pipeline.to_config()


def _supply_error(nodes: object, text: str = SINK, kind: type[Exception] = ConfigError) -> str:
    with pytest.raises(kind) as info:
        Pipeline.from_yaml(text, nodes=nodes)  # type: ignore[arg-type]
    return str(info.value)


def test_nodes_errors_say_which_name_and_how() -> None:
    both = _supply_error({"sink": RGBSink(), "sink_2": RGBSink(), "total": RGBSink()})
    assert "node(s) ['total'] defined both in the YAML's 'nodes:' and in nodes=" in both
    unused = _supply_error({"sink": RGBSink(), "sink_2": RGBSink(), "snk": RGBSink()})
    assert "nodes= gives ['snk'], which no connection of the YAML names" in unused
    assert "names the connections use without a definition (['sink', 'sink_2'])" in unused
    assert "did you mean 'sink' or 'sink_2'?" in unused
    missing = _supply_error({"sink": RGBSink()}, kind=PipelineError)
    assert "connection #4 [shift.rgb, sink_2.rgb_input]: node 'sink_2' is not defined" in missing
    assert "expected a node 'sink_2' with an input port 'rgb_input'" in missing
    as_class = _supply_error({"sink": RGBSink, "sink_2": RGBSink()})
    assert (
        "nodes['sink']: expected a ready Node instance or a {'type': NodeType, 'config': {...}}" in as_class
    )
    assert "found the class RGBSink. Fix: pass an instance, e.g. RGBSink(...)" in as_class
    assert "found int" in _supply_error({"sink": 3, "sink_2": RGBSink()})
    assert "nodes= of the pipeline loader: expected a mapping" in _supply_error([RGBSink()])
    assert "node name 'data' in nodes=" in _supply_error({"data": RGBSink()})
    assert "a key of nodes=: expected a node name (str)" in _supply_error({1: RGBSink()})
    # A definition is checked like one in the file, naming the node.
    bad = _supply_error({"sink": {"type": "ConfigTestRGBSnk"}, "sink_2": RGBSink()})
    assert (
        "node 'sink': unknown node type 'ConfigTestRGBSnk'" in bad
        and "did you mean 'ConfigTestRGBSink'" in bad
    )
    # A supplied node with the wrong ports fails like a defined one, at its connection.
    wrong = _supply_error({"sink": Sum(), "sink_2": RGBSink()}, kind=PipelineError)
    assert "connection #3 [shift.rgb, sink.rgb_input]: unknown input port 'sink.rgb_input' (Sum)" in wrong


def test_structural_errors() -> None:
    assert "unknown top-level key(s) ['edges']" in _error(GOOD + "edges: []\n")
    assert "unknown key(s) ['offset']" in _error("nodes:\n  s:\n    type: ConfigTestOffset\n    offset: 1\n")
    assert "a 'type' naming a registered node type" in _error("nodes:\n  s:\n    config: {}\n")
    assert "connection #1" in _error("nodes: {}\nconnections:\n  - [data.cube]\n")
    assert "any name but 'data'" in _error("nodes:\n  data:\n    type: ConfigTestSum\n")
    assert "a mapping with keys 'nodes' and 'connections'" in _error("- just\n- a list\n")
    with pytest.raises(FileFormatError, match="valid YAML"):
        Pipeline.from_yaml("nodes: [unclosed\n")
    with pytest.raises(FileFormatError, match="no such file"):
        Pipeline.from_yaml("missing.yaml")


def _has(*types: str) -> bool:
    return set(types) <= set(available_nodes())


@pytest.fixture(autouse=True)
def _seed_yaml(request: pytest.FixtureRequest) -> None:
    if "seed" in request.node.name and not SEED_YAML.is_dir():
        pytest.skip(f"the seed's YAML files are absent ({SEED_YAML}): ../shared is not mounted here")


def test_seed_top_k_yaml_loads_as_written() -> None:
    if not _has("SoftChannelSelector", "TopKIndices"):
        pytest.skip("bandselect.selectors does not provide SoftChannelSelector/TopKIndices yet")
    pipeline = Pipeline.from_yaml(SEED_YAML / "top_k_indices.yaml")
    assert pipeline.topological_order() == ["selector", "top_k"]
    assert [str(c) for c in pipeline.connections] == ["selector.weights → top_k.weights"]
    assert pipeline.nodes["top_k"].config == {"k": 3}


def test_seed_soft_channel_selector_yaml_needs_rx() -> None:
    if not _has("SoftChannelSelector", "SelectorEntropyRegularizer", "SelectorDiversityRegularizer"):
        pytest.skip("bandselect.selectors does not provide the soft selector and regularizers yet")
    path = SEED_YAML / "soft_channel_selector.yaml"
    if _has("RXDetector"):
        text = path.read_text() + "\n"
        # Add the rx node's definition and change nothing else: insert it under 'nodes:'.
        rx = "  rx:\n    type: RXDetector\n    config:\n      input_channels: 61\n"
        text = text.replace("nodes:\n", "nodes:\n" + rx, 1)
        pipeline = Pipeline.from_yaml(text)
        assert "rx" in pipeline.nodes
        assert pipeline.source_of("rx", "data") == ("selector", "selected")
    else:
        message = _error(str(path), PipelineError)
        assert "connection #2 [selector.selected, rx.data]: node 'rx' is not defined" in message
        assert "add a node definition named 'rx'" in message


def test_seed_soft_channel_selector_yaml_as_written_with_nodes() -> None:
    if not _has("SoftChannelSelector", "SelectorEntropyRegularizer", "SelectorDiversityRegularizer"):
        pytest.skip("bandselect.selectors does not provide the soft selector and regularizers yet")
    path = SEED_YAML / "soft_channel_selector.yaml"
    message = _error(str(path), PipelineError)
    assert "connection #2 [selector.selected, rx.data]: node 'rx' is not defined" in message
    assert "nodes={'rx': NodeType(...)}" in message
    from bandselect.nodes import RXDetector

    rx = RXDetector(input_channels=61)
    pipeline = Pipeline.from_yaml(path, nodes={"rx": rx})
    assert pipeline.nodes["rx"] is rx and pipeline.source_of("rx", "data") == ("selector", "selected")
    assert pipeline.topological_order() == ["selector", "entropy_loss", "diversity_loss", "rx"]
    by_definition = Pipeline.from_yaml(
        path, nodes={"rx": {"type": "RXDetector", "config": {"input_channels": 61}}}
    )
    assert by_definition.to_config() == pipeline.to_config()


def test_seed_baseline_yaml_with_sink_for_adaclip() -> None:
    if not _has("BaselineFalseRGBSelector"):
        pytest.skip("bandselect.selectors does not provide BaselineFalseRGBSelector yet")
    path = SEED_YAML / "baseline_false_rgb.yaml"
    message = _error(str(path), PipelineError)
    assert "node 'adaclip' is not defined" in message
    assert "nodes={'adaclip': NodeType(...)}" in message
    text = path.read_text().replace("nodes:\n", "nodes:\n  adaclip:\n    type: ConfigTestRGBSink\n", 1)
    wavelengths = torch.linspace(430.0, 910.0, 61)
    cube = torch.from_numpy(np.random.default_rng(0).random((1, 4, 4, 61), dtype=np.float32))
    # The definition added to the text, or the file as written with the node supplied: the same pipeline.
    for pipeline in (Pipeline.from_yaml(text), Pipeline.from_yaml(path, nodes={"adaclip": RGBSink()})):
        assert pipeline.topological_order() == ["baseline_rgb", "adaclip"]
        out = pipeline.run(cube=cube, wavelengths=wavelengths)
        rgb = out["baseline_rgb"]["rgb_image"]
        assert tuple(rgb.shape) == (1, 4, 4, 3)
        torch.testing.assert_close(out["adaclip"]["mean"], rgb.mean())


def test_seed_supervised_cir_yaml_loads_as_written() -> None:
    if not _has("SupervisedCIRBandSelector"):
        pytest.skip("bandselect.selectors does not provide SupervisedCIRBandSelector yet")
    pipeline = Pipeline.from_yaml(SEED_YAML / "supervised_cir.yaml")
    assert {c.target for c in pipeline.connections} == {
        "supervised_cir.cube",
        "supervised_cir.mask",
        "supervised_cir.wavelengths",
    }
