"""The README's set-up and sizing say what the committed benchmark results say."""

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
RESULTS = REPO / "benchmarks" / "results"


def _section(title: str) -> str:
    start = README.index(title)
    return README[start:README.index("\n## ", start + 1)]


def test_set_up_names_the_cpu_wheel_index_and_the_system_packages():
    set_up = _section("## Set up")
    assert "pip install torch==2.13.0 && pip install -e . && posedive build recipes/demo.yaml" in set_up
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in set_up
    assert all(package in set_up for package in ("libegl1", "libegl-mesa0", "libgl1-mesa-dri"))


def test_sizing_follows_from_the_benchmark_results_it_names():
    scaling = README[README.index("**Scaling:**"):]
    scaling = scaling[:scaling.index("\n\n")]
    for name in re.findall(r"benchmarks/results/([\w.-]+\.json)", scaling):
        assert (RESULTS / name).is_file(), name
    conditions = json.loads((RESULTS / "conditions.json").read_text())
    filtering = json.loads((RESULTS / "filtering.json").read_text())
    generation = json.loads((RESULTS / "generation_cuda_h200.json").read_text())
    set_s = 1.0 / max(run["sets_per_s"] for run in conditions["runs"] if run["processes"] == 1)
    estimate_s = filtering["estimate_cpu_ms_per_image"] / 1000.0
    cpu_s = set_s + 2 * estimate_s  # the rendered target and the generated image are both estimated
    rates = sorted(row["images_per_s"] for row in generation["rows"])
    assert f"{round(cpu_s, 2)} s of CPU per image" in scaling
    assert f"{rates[0] * cpu_s:.1f}-{rates[-1] * cpu_s:.1f} cores" in scaling
    assert f"{25 * cpu_s:.1f} cores" in scaling
    cores = re.search(r"Plan about (\d+) CPU cores per GPU", scaling)
    assert cores and int(cores.group(1)) == round(25 * cpu_s)


def test_planning_figures_follow_from_their_benchmark():
    planning = json.loads((RESULTS / "planning.json").read_text())
    paragraph = README[README.index("Reading a source lists its file names only"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    assert "benchmarks/results/planning.json" in paragraph
    assert f"{planning['source']['train_identities']:,} identities" in paragraph
    assert f"{planning['work_units']:,} work units" in paragraph
    assert f"peaks at {planning['peak_rss_gib']:.2f} GiB" in paragraph
    assert f"{round(planning['read_source_s'])} s to read the names" in paragraph
    assert f"{round(planning['make_plan_s'])} s to draw" in paragraph
    assert f"{planning['read_source_cpu_s']:.1f} s of CPU to read the names" in paragraph
    assert f"{planning['make_plan_cpu_s']:.1f} s of CPU to draw" in paragraph
    load = planning["machine"]
    before, after = (f"{load[f'load_average_1min_{when}']:.0f}" for when in ("before", "after"))
    assert f"load average of {before if before == after else f'{before}-{after}'} " in paragraph


def _listed(values: list[str]) -> str:
    return ", ".join(values[:-1]) + " and " + values[-1]


def test_simulated_cluster_figures_are_the_benchmarks():
    simulated = README[README.index("**Simulated cluster:**"):]
    simulated = simulated[:simulated.index("\n\n")]
    assert "benchmarks/results/cluster.json" in simulated
    result = json.loads((RESULTS / "cluster.json").read_text())
    runs = sorted((run for run in result["runs"] if "node_kill" not in run), key=lambda run: run["gpus"])
    stand_in = result["generator_stand_in"]
    assert f"sleeps {stand_in['seconds_per_image']:.3f} s per image" in simulated
    assert f"{stand_in['time_scale']:g} times the H200's {1000 * stand_in['measured_h200_seconds_per_image']:.1f} ms" in simulated
    rates = _listed([f"{run['images_per_s']:.2f}" for run in runs])
    gpus = _listed([str(run["gpus"]) for run in runs])
    assert f"{rates} images/s on {gpus} simulated GPUs" in simulated
    widest = runs[-1]
    assert f"{widest['scaling_efficiency']:.2f} of linear at {widest['gpus']} GPUs" in simulated
    memory = sorted(run["driver_peak_rss_mib"] for run in result["runs"])
    assert f"peak memory {memory[0]:.0f}-{memory[-1]:.0f} MiB" in simulated
    assert all(run["identical_to_local_build"] for run in result["runs"])
    killed = [run for run in result["runs"] if "node_kill" in run]
    assert killed and f"killing one of {killed[0]['gpus']} GPU nodes" in simulated


def test_every_release_the_readme_names_has_the_version_its_recipe_builds():
    """A local release folder (``releases/NAME/VERSION``) and a Hub revision (``org/NAME``, ``v<VERSION>``)
    name the version that ``recipes/*.yaml`` with that name builds."""
    import yaml

    versions = {}
    for path in sorted((REPO / "recipes").glob("*.yaml")):
        recipe = yaml.safe_load(path.read_text())
        versions[recipe["name"]] = str(recipe["version"])
    folders = re.findall(r"releases/([\w.-]+)/(\d+\.\d+\.\d+)", README)
    revisions = re.findall(r'"org/([\w.-]+)", revision="v(\d+\.\d+\.\d+)"', README)
    assert folders and revisions
    for name, version in folders + revisions:
        assert versions.get(name) == version, f"README names {name} {version}; its recipe builds {versions.get(name)}"
    # The loading example reads one release from its folder and from the Hub.
    loading = README[README.index("Loading:"):]
    loading = loading[:loading.index("```", loading.index("```") + 3)]
    (local,) = re.findall(r'load_dataset\("releases/([\w.-]+)/([\d.]+)"', loading)
    (hub,) = re.findall(r'load_dataset\("org/([\w.-]+)", revision="v([\d.]+)"', loading)
    assert local == hub
