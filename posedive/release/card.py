"""The dataset card: ``README.md`` of a release, rendered from the packaged template
``posedive/release/templates/dataset_card.md.jinja`` (read with ``importlib.resources``, so an installed
wheel renders cards exactly as a source checkout does).

Its YAML front matter is the loader: ``configs:`` points the packaged webdataset builder of
``datasets`` at the shards the manifest lists, by name (a glob would take in any stray file copied into
``data/``), and ``dataset_info.features`` declares every column (loading scripts no longer exist in
``datasets`` >= 4, and declared features make the provenance JSON a typed column instead of being
inferred from the first samples).

The card names the generator by what identifies its weights wherever the card is read: a Hub id with
its revision, or a local folder's name, and the weights' sha256 in both cases; never a path, which
means something only on the machine and in the folder where the build ran.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from .. import paths
from ..provenance import provenance_features
from ..recipe import Recipe
from ..schema import GeneratorInfo
from ..sources import SOURCE_FORMATS
from .manifest import Manifest

TEMPLATE_PACKAGE = "posedive.release.templates"
TEMPLATE_NAME = "dataset_card.md.jinja"


def card_template() -> str:
    """The text of the dataset card template shipped inside the package."""
    return resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def _source_citation(manifest: Manifest) -> str | None:
    entry = SOURCE_FORMATS.get(manifest.source.format)
    return entry.citation if entry is not None else None


def source_licence(manifest: Manifest) -> str:
    described = _source_citation(manifest)
    if described is None:
        return ("The identities come from a user-supplied image folder; the images derive from those people "
                "and inherit that folder's licence and consent terms.")
    return (f"The identities come from {described}. That dataset is released for non-commercial research "
            f"only and its images show real people; these derived images carry the same restriction. "
            f"Do not use them outside research, do not try to identify the people, and check the source "
            f"dataset's terms before redistributing. The source images themselves are not included: "
            f"provenance names them by path.")


def release_features(manifest: Manifest):
    from datasets import Features, Image, Value

    # The packaged webdataset builder yields each sample's key and shard URL beside its fields.
    columns = {"__key__": Value("string"), "__url__": Value("string"), manifest.image_format: Image()}
    for name in manifest.condition_maps:
        columns[paths.condition_member(name)] = Image()
    columns["json"] = provenance_features()
    return Features(columns)


def generator_is_local(recipe: Recipe) -> bool:
    """Whether the build loaded its generator from a local folder (the rule ``posedive.generation`` uses)."""
    return recipe.generator.is_local(recipe.base_dir)


def generator_name(recipe: Recipe, generator: GeneratorInfo) -> str:
    """The generator in one line: its Hub id and revision, or its local folder's name, and its sha256."""
    if generator_is_local(recipe):
        return f"{Path(generator.id).name} (local folder, weights sha256 {generator.sha256[:16]})"
    revision = f" at revision {generator.revision}" if generator.revision else ""
    return f"{generator.id}{revision} (weights sha256 {generator.sha256[:16]})"


def front_matter(recipe: Recipe, manifest: Manifest, extra_configs: list[dict] | None = None) -> dict:
    shard_files = [shard.path for shard in manifest.shards]
    configs = [{"config_name": "default", "default": True,
                "data_files": [{"split": paths.SPLIT, "path": shard_files}]}]
    configs += extra_configs or []
    licence = "other" if _source_citation(manifest) is not None else "unknown"
    return {
        "license": licence,
        "pretty_name": f"{recipe.name} {recipe.version} (posedive)",
        "tags": ["person-re-identification", "synthetic", "posedive", "webdataset"],
        "size_categories": [_size_category(manifest.samples)],
        "configs": configs,
        "dataset_info": {
            "config_name": "default",
            "features": release_features(manifest)._to_yaml_list(),
        },
    }


def _size_category(count: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if count < limit:
            return label
    return "1M<n<10M"


def placeholder_repo(recipe: Recipe) -> str:
    """What the loading examples name when the recipe does not say where the release is published."""
    return f"<org>/{recipe.name}"


def render_card(recipe: Recipe, manifest: Manifest, plots: list[str], repo_id: str | None = None,
                extra_configs: list[dict] | None = None) -> str:
    """The card's loading examples name ``repo_id``, else the recipe's ``output.hub_repo``, else a
    ``<org>/<name>`` placeholder (and say so)."""
    import jinja2

    environment = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)
    template = environment.from_string(card_template())
    return template.render(
        front_matter=yaml.safe_dump(front_matter(recipe, manifest, extra_configs), sort_keys=False, allow_unicode=True),
        recipe=recipe,
        manifest=manifest,
        rates=manifest.totals.rates(),
        plots=plots,
        source_licence=source_licence(manifest),
        generator_local=generator_is_local(recipe),
        generator_folder=Path(manifest.generator.id).name,
        repo_id=repo_id or recipe.output.hub_repo or placeholder_repo(recipe),
        repo_placeholder=not (repo_id or recipe.output.hub_repo),
    )
