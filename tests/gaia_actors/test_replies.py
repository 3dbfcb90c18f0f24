"""Typed replies become the JSON the control protocol has always sent: fields in order,
tuples as lists, nested records as objects, and a part nobody asked for left out."""

from __future__ import annotations

import json
from types import MappingProxyType

import pykka
import pytest

from gaia_actors.control.protocol import to_json
from gaia_actors.errors import UnexpectedReply
from gaia_actors.improve.status import EngineIdle, LastCycle, WorkerView
from gaia_actors.pipeline.status import PipelineStatus, RunView
from gaia_actors.replies import DataLoss, ask_reply
from supervisors import Registry


def run_view(output: tuple[str, ...] | None) -> RunView:
    return RunView(
        pipeline_id=3, run=2, pipeline_ids=(2, 3), what="all", kind="staging_to_prod",
        release="r1", environments=("staging", "prod"), stage="deploy", stage_kind="deploy",
        stage_elapsed=0.5, elapsed=2.0, trigger="operator",
        stages=MappingProxyType({"3:deploy": "running"}), cancelling=False, output=output,
    )  # fmt: skip


def test_a_reply_is_an_object_of_its_fields_in_order() -> None:
    status = PipelineStatus(running=(run_view(None),), locks=MappingProxyType({"prod": 2}))
    text = json.dumps(to_json(status))
    assert text.startswith('{"running": [{"pipeline_id": 3, "run": 2, "pipeline_ids": [2, 3],')
    assert text.endswith('"stages": {"3:deploy": "running"}, "cancelling": false}], '
                         '"locks": {"prod": 2}}')  # fmt: skip


def test_output_nobody_asked_for_is_left_out_and_asked_output_is_sent_even_empty() -> None:
    assert "output" not in to_json(run_view(None))
    assert to_json(run_view(()))["output"] == []
    assert to_json(run_view(("a", "b")))["output"] == ["a", "b"]


def test_none_is_sent_where_the_field_says_so() -> None:
    idle = EngineIdle(running=False, last=None, workers=MappingProxyType({}))
    assert to_json(idle) == {"running": False, "last": None, "workers": {}}
    worker = WorkerView(ready=True, generation=1, batch=None)
    last = LastCycle(cycle_id=4, status="failed", seconds=1.5, error="boom")
    idle = EngineIdle(running=False, last=last, workers=MappingProxyType({"w.0": worker}))
    assert to_json(idle) == {
        "running": False,
        "last": {"cycle_id": 4, "status": "failed", "seconds": 1.5, "error": "boom"},
        "workers": {"w.0": {"ready": True, "generation": 1, "batch": None}},
    }


def test_a_data_loss_restored_from_a_backup_names_it() -> None:
    loss = DataLoss(at=10.0, lost=("app.db disappeared",), restored="20260101T000000Z")
    assert to_json(loss) == {
        "at": 10.0,
        "lost": ["app.db disappeared"],
        "restored": "20260101T000000Z",
    }


class Answering(pykka.ThreadingActor):
    """Answers every ask with ``answer``."""

    def __init__(self, answer: object) -> None:
        super().__init__()
        self.answer = answer

    def on_receive(self, message: object) -> object:
        return self.answer


def test_ask_reply_returns_the_record_the_query_promises_and_refuses_anything_else() -> None:
    registry = Registry()
    loss = DataLoss(at=1.0, lost=("a.db disappeared",))
    refs = [Answering.start(loss), Answering.start({"at": 1.0})]
    registry.register("right", refs[0])
    registry.register("wrong", refs[1])
    try:
        assert ask_reply(registry, "right", "GetLoss", DataLoss, timeout=5) is loss
        with pytest.raises(UnexpectedReply) as refused:
            ask_reply(registry, "wrong", "GetLoss", DataLoss, timeout=5)
        assert str(refused.value) == "wrong answered str with a dict, not a DataLoss"
    finally:
        for ref in refs:
            ref.stop()
