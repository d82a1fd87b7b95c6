"""``posedive build RECIPE``: build, resume or finish a release; ``--dry-run`` prints the plan."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from ..errors import InputError, RecipeError
from ._choices import choice_option
from ._common import console, escape, user_errors


class EngineName(StrEnum):
    """Where the shards are built: ``local`` (this process) or ``ray`` (a Ray cluster)."""

    local = "local"
    ray = "ray"


def _print_plan(report, recipe) -> None:
    summary = report.plan.summary()
    table = Table(title=f"plan of {recipe.name} {recipe.version}", show_header=False)
    for name, value in summary.items():
        table.add_row(name, str(value))
    table.add_row("source", report.source.summary())
    table.add_row("release folder", str(report.release_dir))
    console.print(table)
    units = Table(title="first work units (attempt 0)")
    for column in ("key", "shard", "reference", "pose", "elevation", "azimuth", "seed"):
        units.add_column(column)
    for unit in report.plan.units[:10]:
        first = unit.attempts[0]
        units.add_row(unit.key, str(unit.shard), first.reference, first.pose_id, f"{first.elevation_deg:.1f}",
                      f"{first.azimuth_deg:.1f}", str(first.seed))
    console.print(units)


def _print_rejections(report) -> None:
    for rejection in report.rejected_shards:
        console.print(f"[bold yellow]rejected[/] {escape(rejection.describe())}; rebuilt", highlight=False)


def _print_summary(report, recipe) -> None:
    from ..release.card import generator_name

    manifest = report.manifest
    if manifest is None:
        if report.other_builds:
            console.print(f"built shards {report.built_shards}; every shard exists, and the build still running "
                          f"({'; '.join(report.other_builds)}) finishes the release", highlight=False)
            return
        console.print(f"built shards {report.built_shards}; still missing {report.missing_shards} "
                      f"(build the other parts, then run `posedive build` again to finish the release)")
        return
    totals, rates = manifest.totals, manifest.totals.rates()
    table = Table(title=f"release {manifest.name} {manifest.version}", show_header=False)
    table.add_row("folder", str(report.release_dir))
    table.add_row("samples", f"{manifest.samples} in {len(manifest.shards)} shard(s), {manifest.identities} identities")
    table.add_row("attempts", str(totals.attempts))
    for stage in ("reference", "target", "generated"):
        table.add_row(f"{stage} filter", f"{rates[stage] * 100:.1f}% kept ({getattr(totals, stage + '_rejected')} rejected)")
    table.add_row("short units", f"{totals.short_units} ({len(manifest.short_pids)} identities short)")
    table.add_row("generator", f"{generator_name(recipe, manifest.generator)}: {manifest.generator.description}")
    table.add_row("time", f"{report.seconds:.1f} s")
    console.print(table)


def build(
    recipe_path: Path = typer.Argument(..., help="recipe YAML file"),
    part: str = typer.Option(None, "--part", help="build only part i of N of the shards, e.g. 3/8"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan and stop"),
    plan_out: Path = typer.Option(None, "--plan-out", help="with --dry-run: write the plan as JSON lines here"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    engine: EngineName = choice_option(EngineName, "local", "--engine",
                                       help="where shards are built: local (this machine) or ray"),
    address: str = typer.Option(None, "--address",
                                help="with --engine ray: the cluster to join (e.g. auto); default: start a local one"),
) -> None:
    """Build the release a recipe describes (resumes an interrupted build; finished releases are immutable)."""
    from ..builder import StageUnavailable, build_release
    from ..generation.checkpoint import check_generator
    from ..plan import parse_part
    from ..recipe import load_recipe

    with user_errors():
        if address is not None and engine is not EngineName.ray:
            raise InputError("--address is for --engine ray", hint="add --engine ray, or leave out --address")
        recipe = load_recipe(recipe_path)
        problems = recipe.check_paths()
        if dry_run:  # planning needs the source and the pose bank, not the generator's weights
            problems = [problem for problem in problems if not problem.startswith("generator.")]
        elif not any(problem.startswith("generator.weights") for problem in problems):
            # before any shard is built: the generator was trained for this resolution and these maps
            problems += check_generator(recipe.generator, recipe.base_dir).problems
        if problems:
            raise RecipeError(f"{recipe_path}: " + "; ".join(problems))
        part_spec = parse_part(part) if part else None
        shard_engine = None
        if engine is EngineName.ray and not dry_run:
            from ..builder.ray_engine import RayEngine
            from ..parallel import RayUnavailable

            try:
                shard_engine = RayEngine(address=address)
            except RayUnavailable as error:
                console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
                raise typer.Exit(code=3) from None
        try:
            report = build_release(recipe, part=part_spec, dry_run=dry_run, show_progress=progress, engine=shard_engine)
        except StageUnavailable as error:
            console.print(f"[bold red]build stopped after planning:[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(code=3) from None
    if dry_run:
        _print_plan(report, recipe)
        if plan_out:
            report.plan.write(plan_out)
            console.print(f"plan written to {plan_out.resolve()}")
    if report.already_complete:
        console.print(f"release {recipe.name} {recipe.version} is already complete at {report.release_dir}")
        if not dry_run:
            _print_summary(report, recipe)
        return
    if dry_run:
        return
    _print_rejections(report)
    _print_summary(report, recipe)


def register(app: typer.Typer) -> None:
    app.command("build")(build)
