"""The model card's recipe: the commands it prints rebuild the model's stages, teacher first when one was used."""

from __future__ import annotations

from typing import Any

from sentiment.card import recipe_commands, stage_start, stages

TEACHER: dict[str, Any] = {"steps": 1500, "lr": 8e-5, "chat_share": 0.55, "review_share": 0.2}
TEACHER_2: dict[str, Any] = {"steps": 800, "lr": 3e-5, "chat_share": 0.85, "review_share": 0.03, "init": TEACHER}


def run(steps: int, distilled: bool | None, init: dict[str, Any] | None = None,
        teacher: dict[str, Any] = TEACHER) -> dict[str, Any]:
    summary: dict[str, Any] = {"config": {"student_steps": steps, "student_lr": 1e-4, "chat_share": 0.55,
                                          "review_share": 0.2}}
    if distilled is not None:
        summary["distilled"] = distilled
        summary["teacher"] = teacher if distilled else None
    if init is not None:
        summary["init"] = init
    return summary


TEACHER = {"steps": 1500, "lr": 8e-5, "chat_share": 0.55, "review_share": 0.2}


def test_stages_are_listed_first_first_and_only_distilled_ones_name_the_teacher() -> None:
    first = run(1100, None)  # written before the field existed: not distilled
    second = run(800, True, init=first)
    chain = stages(second)
    assert [r["config"]["student_steps"] for r in chain] == [1100, 800]
    commands = recipe_commands(chain)
    assert commands[0].startswith(
        "livecommerce sentiment train --teacher-steps 1500 --teacher-lr 8e-05 --student-steps 0")
    assert "--teacher " not in commands[1] and "--init" not in commands[1]
    assert "--teacher sentiment/runs/teacher1 --init sentiment/runs/stage1 --out sentiment/runs/stage2" in commands[2]
    assert stage_start(1, first) == "from the base"
    assert stage_start(2, second) == "from stage 1, distilled from the teacher"


def test_no_teacher_command_when_no_stage_was_distilled() -> None:
    chain = stages(run(600, False, init=run(1100, False)))
    assert len(recipe_commands(chain)) == 2
    assert not any("--teacher" in command for command in recipe_commands(chain))


def test_a_first_stage_distilled_starts_from_the_teachers_layers() -> None:
    assert stage_start(1, run(1100, True)) == "from the teacher's layers, distilled from the teacher"


def test_a_two_stage_teacher_is_rebuilt_stage_by_stage_and_each_student_stage_names_its_own_teacher() -> None:
    chain = stages(run(600, True, init=run(800, True, init=run(1100, False)), teacher=TEACHER_2))
    commands = recipe_commands(chain)
    assert len(commands) == 2 + 3
    assert "--teacher-init" not in commands[0] and "--teacher sentiment/runs/teacher1 " in commands[0]
    assert "--teacher-steps 800" in commands[1]
    assert "--teacher-init sentiment/runs/teacher1 --teacher sentiment/runs/teacher2 " in commands[1]
    assert "--teacher" not in commands[2]
    assert "--teacher sentiment/runs/teacher1 --init sentiment/runs/stage1" in commands[3]
    assert "--teacher sentiment/runs/teacher2 --init sentiment/runs/stage2" in commands[4]
