"""Pipeline graph: connection checks, execution order and values, partial runs, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bandselect.errors import ConfigError, FileFormatError, PipelineError
from bandselect.pipeline import Connection, Node, Pipeline, PipelineGraph, PortSpec, register_node

CUBE = ("B", "H", "W", "C")


@register_node(name="GraphTestScale")
class Scale(Node):
    INPUT_PORTS = (PortSpec("cube", torch.float32, CUBE),)
    OUTPUT_PORTS = (PortSpec("cube", torch.float32, CUBE),)

    def __init__(self, factor: float = 2.0) -> None:
        super().__init__(factor=factor)
        self.factor = factor

    def forward(self, cube: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"cube": cube * self.factor}


@register_node(name="GraphTestWeights")
class Weights(Node):
    """Holds per-band logits as a buffer; ``unfreeze`` turns them into a parameter (same state_dict key)."""

    INPUT_PORTS = ()
    OUTPUT_PORTS = (PortSpec("weights", torch.float32, ("C",)),)

    def __init__(self, n_bands: int) -> None:
        super().__init__(n_bands=n_bands)
        self.register_buffer("logits", torch.zeros(n_bands))

    def unfreeze(self) -> None:
        value = self.logits.detach().clone()
        del self._buffers["logits"]
        self.logits = nn.Parameter(value)

    def forward(self) -> dict[str, torch.Tensor]:
        return {"weights": torch.softmax(self.logits, dim=0)}


@register_node(name="GraphTestWeightedSum")
class WeightedSum(Node):
    INPUT_PORTS = (
        PortSpec("cube", torch.float32, CUBE),
        PortSpec("weights", torch.float32, ("C",)),
        PortSpec("offset", torch.float32, ("B", "H", "W", 1), optional=True),
    )
    OUTPUT_PORTS = (PortSpec("score", torch.float32, ("B", "H", "W", 1)),)

    def forward(self, cube: torch.Tensor, weights: torch.Tensor, offset: torch.Tensor | None = None) -> dict:
        score = (cube * weights).sum(dim=-1, keepdim=True)
        return {"score": score if offset is None else score + offset}


@register_node(name="GraphTestMaskedMean")
class MaskedMean(Node):
    """A loss-like node that needs the mask."""

    INPUT_PORTS = (
        PortSpec("score", torch.float32, ("B", "H", "W", 1)),
        PortSpec("mask", torch.bool, ("B", "H", "W", 1)),
    )
    OUTPUT_PORTS = (PortSpec("loss", torch.float32, ()),)

    def forward(self, score: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": score[mask].mean()}


@register_node(name="GraphTestIntWavelengths")
class IntWavelengths(Node):
    INPUT_PORTS = (PortSpec("wavelengths", torch.int32, ("C",)),)
    OUTPUT_PORTS = (PortSpec("count", torch.int64, ()),)

    def forward(self, wavelengths: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"count": torch.tensor(wavelengths.numel())}


@register_node(name="GraphTestRGB")
class RGB(Node):
    INPUT_PORTS = (PortSpec("cube", torch.float32, CUBE),)
    OUTPUT_PORTS = (PortSpec("rgb", torch.float32, ("B", "H", "W", 3)),)

    def forward(self, cube: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"rgb": cube[..., :3]}


def _cube(seed: int = 0, shape: tuple[int, ...] = (2, 3, 4, 5)) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random(shape, dtype=np.float32))


def _weighted_pipeline() -> tuple[Pipeline, Scale, Weights, WeightedSum]:
    pipeline = Pipeline()
    # Added downstream-first: execution order must follow the connections, not insertion.
    total, weights, scale = WeightedSum(), Weights(5), Scale(3.0)
    pipeline.add_node(total, name="total")
    pipeline.add_node(weights, name="weights")
    pipeline.add_node(scale, name="scale")
    pipeline.connect(("data.cube", scale.cube), (scale.cube, total.cube), (weights.weights, total.weights))
    return pipeline, scale, weights, total


def test_runs_in_topological_order_with_correct_values() -> None:
    pipeline, _, weights, _ = _weighted_pipeline()
    with torch.no_grad():
        weights.logits.copy_(torch.tensor([0.0, 1.0, 2.0, 0.5, -1.0]))
    cube = _cube()
    assert pipeline.topological_order() == ["weights", "scale", "total"]
    out = pipeline.run(cube=cube)
    assert list(out) == ["weights", "scale", "total"]
    w = np.exp([0.0, 1.0, 2.0, 0.5, -1.0])
    w /= w.sum()
    expected = (3.0 * cube.numpy() * w).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(out["total"]["score"].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(out["scale"]["cube"].numpy(), 3.0 * cube.numpy())
    assert pipeline.upstream_of("total") == {"scale", "weights"}
    assert pipeline.upstream_of("scale") == set()
    # forward and run are the same call
    torch.testing.assert_close(pipeline(cube=cube)["total"]["score"], out["total"]["score"])


def test_inputs_for_runs_only_upstream() -> None:
    pipeline, *_ = _weighted_pipeline()
    cube = _cube()
    inputs = pipeline.inputs_for("total", cube=cube)
    assert set(inputs) == {"cube", "weights"}  # optional, unconnected offset left out
    torch.testing.assert_close(inputs["cube"], cube * 3.0)
    torch.testing.assert_close(inputs["weights"], torch.full((5,), 0.2))
    assert pipeline.inputs_for("scale", cube=cube) == {"cube": cube}


def test_default_names_are_snake_case_and_deduplicated() -> None:
    pipeline = Pipeline()
    assert pipeline.add_node(WeightedSum()) == "weighted_sum"
    assert pipeline.add_node(WeightedSum()) == "weighted_sum_2"
    assert pipeline.add_node(Scale()) == "scale"
    node = Scale()
    name = pipeline.add_node(node)
    assert pipeline.node_name(node) == name == "scale_2"
    assert pipeline.node_name(pipeline.data) == "data"


def test_seed_style_connect_adds_nodes_by_reference() -> None:
    pipeline = Pipeline()
    weights = Weights(5)
    pipeline.add_node(weights)
    total = WeightedSum()
    pipeline.connect((weights.weights, total.weights), (pipeline.data.cube, total.cube))
    assert pipeline.node_name(total) == "weighted_sum"
    assert [str(c) for c in pipeline.connections] == [
        "weights.weights → weighted_sum.weights",
        "data.cube → weighted_sum.cube",
    ]


def test_add_node_errors() -> None:
    pipeline = Pipeline()
    scale = Scale()
    pipeline.add_node(scale, name="a")
    with pytest.raises(PipelineError, match="already added as 'a'"):
        pipeline.add_node(scale)
    with pytest.raises(PipelineError, match="reserved data source"):
        pipeline.add_node(Scale(), name="data")
    with pytest.raises(PipelineError, match="already a Scale"):
        pipeline.add_node(Scale(), name="a")
    with pytest.raises(PipelineError, match="identifier"):
        pipeline.add_node(Scale(), name="a.b")
    with pytest.raises(PipelineError, match="Node subclass"):
        pipeline.add_node(nn.Linear(2, 2))  # type: ignore[arg-type]


def test_connect_direction_errors() -> None:
    pipeline, _, _, total = _weighted_pipeline()
    extra = WeightedSum()
    pipeline.add_node(extra, name="extra")
    with pytest.raises(PipelineError, match=r"unknown output port 'extra.cube'.*is an input port"):
        pipeline.connect(("extra.cube", "total.offset"))
    with pytest.raises(PipelineError, match=r"unknown input port 'extra.score'.*is an output port.*swap"):
        pipeline.connect(("data.cube", extra.score))
    with pytest.raises(PipelineError, match=r"unknown input port 'extra.weight'.*did you mean 'weights'"):
        pipeline.connect(("weights.weights", "extra.weight"))
    with pytest.raises(PipelineError, match=r"node 'nowhere' is not defined.*add a node definition named"):
        pipeline.connect(("nowhere.x", "extra.cube"))
    with pytest.raises(PipelineError, match="invalid port reference"):
        pipeline.connect(("datacube", "extra.cube"))
    with pytest.raises(PipelineError, match=r"input total.cube connected at most once.*fed by scale.cube"):
        pipeline.connect(("data.cube", total.cube))
    # failed connections left nothing behind
    assert len(pipeline.connections) == 3


def test_connect_dtype_and_shape_errors() -> None:
    pipeline = Pipeline()
    total, rgb, masked = WeightedSum(), RGB(), MaskedMean()
    for node in (total, rgb, masked):
        pipeline.add_node(node)
    with pytest.raises(PipelineError, match=r"expected dtype float32, found dtype bool"):
        pipeline.connect(("data.mask", total.offset))
    with pytest.raises(PipelineError, match=r"expected shape \('C',\), found shape \('B', 'H', 'W', 'C'\)"):
        pipeline.connect(("data.cube", total.weights))
    # A score map (size 1) has no channel count to configure: the fix says which sizes disagree.
    with pytest.raises(PipelineError, match=r"sizes agree in dimension 3 \(3 against 1\)") as error:
        pipeline.connect((rgb.rgb, masked.score))  # (B,H,W,3) into (B,H,W,1)
    assert "channels" not in str(error.value)
    # the seed declares wavelengths int32: float wavelengths connect
    node = IntWavelengths()
    pipeline.connect((pipeline.data.wavelengths, node.wavelengths))
    out = pipeline.run(outputs=["int_wavelengths"], wavelengths=torch.arange(5, dtype=torch.float32))
    assert int(out["int_wavelengths"]["count"]) == 5


def test_cycle_is_refused_and_named() -> None:
    pipeline = Pipeline()
    for name in ("a", "b", "c"):
        pipeline.add_node(Scale(), name=name)
    pipeline.connect(("a.cube", "b.cube"), ("b.cube", "c.cube"))
    with pytest.raises(PipelineError, match=r"closes a cycle.*cycle a → b → c → a"):
        pipeline.connect(("c.cube", "a.cube"))
    with pytest.raises(PipelineError, match=r"cycle a → a"):
        pipeline.connect(("a.cube", "a.cube"))
    assert pipeline.topological_order() == ["a", "b", "c"]


def test_ties_go_to_the_earliest_added_node_one_at_a_time() -> None:
    pipeline = Pipeline()
    for name in ("x", "y", "z", "w"):
        pipeline.add_node(Scale(), name=name)
    pipeline.connect(("y.cube", "x.cube"))
    # x becomes ready once y ran and was added before z and w: it goes next (not after the first "wave").
    assert pipeline.topological_order() == ["y", "x", "z", "w"]
    pipeline.connect(("w.cube", "y.cube"))
    assert pipeline.topological_order() == ["z", "w", "y", "x"]


def test_a_corrupted_cycle_is_named_from_the_earliest_added_node() -> None:
    pipeline = Pipeline()
    for name in ("p", "a", "b", "c"):
        pipeline.add_node(Scale(), name=name)
    pipeline.connect(("b.cube", "c.cube"), ("a.cube", "b.cube"), ("data.cube", "a.cube"))
    pipeline._connections.append(Connection("c", "cube", "a", "cube"))  # what connect() refuses
    with pytest.raises(PipelineError, match=r"the pipeline has a cycle: .*found cycle a → b → c → a\."):
        pipeline.topological_order()


def test_the_graph_alone_has_no_persistence_and_pipeline_adds_no_state() -> None:
    graph = PipelineGraph()
    graph.connect(("data.cube", Scale(2.0).cube))
    assert graph.run(cube=torch.ones(1, 1, 1, 2))["scale"]["cube"].tolist() == [[[[2.0, 2.0]]]]
    assert not hasattr(graph, "to_yaml") and not hasattr(PipelineGraph, "load")
    pipeline, *_ = _weighted_pipeline()
    assert isinstance(pipeline, PipelineGraph)
    assert set(pipeline.state_dict()) == {"nodes.weights.logits"}


def test_missing_inputs_are_named() -> None:
    pipeline, *_ = _weighted_pipeline()
    with pytest.raises(PipelineError, match=r"required input scale.cube \(Scale\).*fed by data.cube.*cube="):
        pipeline.run()
    with pytest.raises(PipelineError, match=r"unknown data port\(s\) \['cubes'\]"):
        pipeline.run(cubes=_cube())
    lonely = Pipeline()
    lonely.add_node(Scale(), name="s")
    with pytest.raises(PipelineError, match=r"required input s.cube \(Scale\) is not connected"):
        lonely.run(cube=_cube())


def test_outputs_limits_what_runs() -> None:
    pipeline, _, _, total = _weighted_pipeline()
    loss = MaskedMean()
    pipeline.add_node(loss, name="loss")
    pipeline.connect((total.score, loss.score), ("data.mask", loss.mask))
    cube = _cube()
    # Inference without a mask: ask for what is needed
    out = pipeline.run(cube=cube, outputs=["total"])
    assert set(out) == {"weights", "scale", "total"}
    # Everything: the loss needs the mask, and the error says so and how to avoid it
    missing_mask = r"loss.mask \(MaskedMean\).*data.mask, which was not passed.*outputs="
    with pytest.raises(PipelineError, match=missing_mask):
        pipeline.run(cube=cube)
    mask = cube[..., :1] > 0.5
    out = pipeline.run(cube=cube, mask=mask)
    expected = out["total"]["score"][mask].mean()
    torch.testing.assert_close(out["loss"]["loss"], expected)
    with pytest.raises(PipelineError, match="node 'nope' is not defined"):
        pipeline.run(cube=cube, outputs=["nope"])


def test_optional_input_fed_by_absent_data_port_is_left_out() -> None:
    pipeline = Pipeline()
    total, weights = WeightedSum(), Weights(5)
    pipeline.connect(("data.cube", total.cube), (weights.weights, total.weights))
    # offset is optional; no source at all -> computed without it
    out = pipeline.run(cube=torch.ones(1, 2, 2, 5))
    torch.testing.assert_close(out["weighted_sum"]["score"], torch.ones(1, 2, 2, 1))


def test_save_load_identical_outputs(tmp_path) -> None:
    pipeline, _, weights, _ = _weighted_pipeline()
    with torch.no_grad():
        weights.logits.copy_(torch.tensor([3.0, -1.0, 0.0, 2.0, 1.0]))
    cube = _cube(1)
    before = pipeline.run(cube=cube)["total"]["score"]
    pipeline.save(tmp_path / "p")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["pipeline.yaml", "weights.pt"]
    loaded = Pipeline.load(tmp_path / "p")
    assert loaded.to_yaml() == pipeline.to_yaml()
    assert loaded.topological_order() == pipeline.topological_order()
    torch.testing.assert_close(loaded.run(cube=cube)["total"]["score"], before, rtol=0, atol=0)
    assert set(loaded.state_dict()) == {"nodes.weights.logits"}


def test_save_load_with_buffer_turned_parameter(tmp_path) -> None:
    pipeline, _, weights, _ = _weighted_pipeline()
    weights.unfreeze()
    assert isinstance(weights.logits, nn.Parameter)
    with torch.no_grad():
        weights.logits.add_(torch.arange(5.0))
    cube = _cube(2)
    before = pipeline.run(cube=cube)["total"]["score"].detach()
    pipeline.save(tmp_path / "p")
    loaded = Pipeline.load(tmp_path / "p")  # rebuilt with a buffer: same key, same values
    torch.testing.assert_close(loaded.run(cube=cube)["total"]["score"], before, rtol=0, atol=0)
    # and into a pipeline whose node is already a parameter
    target = Pipeline.from_yaml(tmp_path / "p" / "pipeline.yaml")
    target.nodes["weights"].unfreeze()
    target.load_state_dict(torch.load(tmp_path / "p" / "weights.pt", weights_only=True))
    torch.testing.assert_close(target.run(cube=cube)["total"]["score"].detach(), before, rtol=0, atol=0)


def test_failed_save_leaves_previous_save(tmp_path) -> None:
    pipeline, *_ = _weighted_pipeline()
    pipeline.save(tmp_path)
    before = (tmp_path / "pipeline.yaml").read_text()

    class Unregistered(Scale):
        pass

    pipeline.add_node(Unregistered(), name="odd")
    with pytest.raises(ConfigError, match=r"is not registered.*@register_node"):
        pipeline.save(tmp_path)
    assert (tmp_path / "pipeline.yaml").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.yaml", "weights.pt"]


def test_load_errors(tmp_path) -> None:
    with pytest.raises(FileFormatError, match=r"pipeline\.yaml missing"):
        Pipeline.load(tmp_path)
    pipeline, *_ = _weighted_pipeline()
    pipeline.save(tmp_path)
    torch.save({"nodes.weights.logits": torch.zeros(7)}, tmp_path / "weights.pt")
    with pytest.raises(FileFormatError, match="weights matching the pipeline"):
        Pipeline.load(tmp_path)
