"""The flow config's ``export:`` section: products, where each goes, GeoTIFFs, and bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bandselect.errors import ConfigError
from bandselect.flows import SelectBandsConfig, load_config


def _config(tmp_path: Path, **export: object) -> SelectBandsConfig:
    data = {"campaign": "c", "store": str(tmp_path / "s.zarr"), "output": str(tmp_path / "out.zarr")}
    return load_config({**data, "export": export}, SelectBandsConfig)


def test_defaults_are_the_composites_of_today(tmp_path: Path) -> None:
    plan = _config(tmp_path).product_plan()
    assert plan.outputs == {"composite": str(tmp_path / "out.zarr")}
    assert plan.geotiff == "none" and plan.geotiff_path("composite", "a-1") is None


def test_the_first_product_goes_to_output_the_others_beside_it(tmp_path: Path) -> None:
    plan = _config(tmp_path, products=["bands", "composite"], geotiff="cog").product_plan()
    assert plan.outputs == {
        "bands": str(tmp_path / "out.zarr"),
        "composite": str(tmp_path / "out-composite.zarr"),
    }
    assert plan.geotiff_path("bands", "a-1") == tmp_path / "out-geotiff" / "bands" / "a-1.tif"
    named = _config(tmp_path, products=["composite", "bands"], outputs={"bands": str(tmp_path / "k.zarr")})
    assert named.product_plan().outputs["bands"] == str(tmp_path / "k.zarr")


def test_paths_in_a_yaml_file_are_relative_to_it(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "run.yaml").write_text(
        "campaign: c\nstore: s.zarr\noutput: out.zarr\n"
        "export: {products: [composite, bands], outputs: {bands: k/bands.zarr},\n"
        "         geotiff: tiff, geotiff_dir: tif}\n"
    )
    plan = load_config(folder / "run.yaml", SelectBandsConfig).product_plan()
    assert plan.outputs["bands"] == str(folder / "k" / "bands.zarr")
    assert plan.geotiff_dir == str(folder / "tif")


def test_an_object_store_url_is_refused_where_a_flow_takes_a_local_path(tmp_path: Path) -> None:
    # Path("s3://b/c") is the local folder "s3:/b/c": a run would have written there without a word.
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "run.yaml").write_text("campaign: c\nstore: s3://bucket/campaign.zarr\noutput: out.zarr\n")
    with pytest.raises(ConfigError, match=r"store.*local path.*'s3://bucket/campaign.zarr'"):
        load_config(folder / "run.yaml", SelectBandsConfig)
    with pytest.raises(ConfigError, match="local path"):
        _config(tmp_path, products=["composite", "bands"], outputs={"bands": "s3://bucket/bands.zarr"})
    with pytest.raises(ConfigError, match="local path"):
        _config(tmp_path, geotiff="cog", geotiff_dir="gs://bucket/tif")
    from bandselect.flows.compare_selectors import CompareSelectorsConfig

    with pytest.raises(ConfigError, match=r"scene.*local path.*'s3://bucket/scene.zarr'"):
        load_config({"scene": {"path": "s3://bucket/scene.zarr"}}, CompareSelectorsConfig)
    with pytest.raises(ConfigError, match=r"output_dir.*local path"):
        load_config(
            {"scene": {"path": "scene.npz"}, "output_dir": "s3://bucket/compare"}, CompareSelectorsConfig
        )
    from bandselect.products import ProductPlan

    plan = ProductPlan({"composite": "c.zarr"}, geotiff="tiff", geotiff_dir=f"file://{tmp_path}/tif")
    assert plan.geotiff_path("composite", "a-1") == tmp_path / "tif" / "composite" / "a-1.tif"
    assert not (folder / "s3:").exists()


def test_a_campaign_url_is_not_resolved_as_a_path_in_cache_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline cache key of a campaign on an object store does not depend on the working folder
    (``Path(url).resolve()`` made it ``<cwd>/s3:/...``)."""
    from bandselect.training.campaign import _store_key

    monkeypatch.chdir(tmp_path)
    here = _store_key("s3://bucket/campaign.zarr/")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert _store_key("s3://bucket/campaign.zarr") == here == "s3://bucket/campaign.zarr"
    assert _store_key("c.zarr") == str(tmp_path / "elsewhere" / "c.zarr")


@pytest.mark.parametrize(
    ("export", "match"),
    [
        ({"products": []}, "products"),
        ({"products": ["composite", "composite"]}, "each product once"),
        ({"products": ["rgb"]}, "products"),
        ({"geotiff": "png"}, "geotiff"),
        ({"products": ["composite", "bands"], "outputs": {"bands": "OUT"}}, "a path of its own"),
        ({"products": ["bands"], "outputs": {"bands": "STORE"}}, "a path of its own"),
        ({"products": ["composite"], "outputs": {"bands": "OUT"}}, "products does not list"),
    ],
)
def test_bad_export_settings(tmp_path: Path, export: dict[str, object], match: str) -> None:
    paths = {"OUT": str(tmp_path / "out.zarr"), "STORE": str(tmp_path / "s.zarr")}
    if "outputs" in export:
        export = {**export, "outputs": {k: paths[v] for k, v in export["outputs"].items()}}  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=match) as raised:
        _config(tmp_path, **export)
    assert "Fix:" in str(raised.value)


@pytest.mark.parametrize(
    ("fields", "hint"),
    [
        # A section's setting written at the top: where it goes.
        (
            {"products": ["bands"]},
            "'products' is a setting of a section: write it under 'export:' (export.products)",
        ),
        ({"device": "cpu"}, "under 'statistics:' (statistics.device) or 'training:' (training.device)"),
        # A misspelling, at the top, in a section, and in the training section (its own model).
        ({"campain": "c"}, "'campain' is not a setting (did you mean 'campaign'?)"),
        ({"epoch": 3}, "'epoch' is not a setting (did you mean 'training.epochs'?)"),
        (
            {"export": {"prodcts": ["bands"]}},
            "'prodcts' is not a setting of 'export' (did you mean 'export.products'?)",
        ),
        (
            {"training": {"epoch": 3}},
            "'epoch' is not a setting of 'training' (did you mean 'training.epochs'?)",
        ),
    ],
)
def test_an_unknown_setting_says_where_it_probably_belongs(
    tmp_path: Path, fields: dict[str, object], hint: str
) -> None:
    data = {"campaign": "c", "store": str(tmp_path / "s.zarr"), "output": str(tmp_path / "out.zarr")}
    with pytest.raises(ConfigError) as raised:
        load_config({**data, **fields}, SelectBandsConfig)
    message = str(raised.value)
    fix = message.split("Fix: ", 1)[1]
    assert "Extra inputs are not permitted" in message and hint in fix.split("; ")[0], fix
    assert "correct the fields named above" in fix


def test_a_setting_with_no_likely_home_gets_no_guess(tmp_path: Path) -> None:
    data = {"campaign": "c", "store": str(tmp_path / "s.zarr"), "output": str(tmp_path / "out.zarr")}
    with pytest.raises(ConfigError) as raised:
        load_config({**data, "colour_map": "viridis"}, SelectBandsConfig)
    assert str(raised.value).split("Fix: ", 1)[1].startswith("correct the fields named above")
