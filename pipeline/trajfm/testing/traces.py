"""Small synthetic traces built in memory, for tests and benchmarks that need many traces quickly.

Contract: `synthetic_traces(n, seed)` returns `n` AssetOpsBench-shaped traces (ReAct steps numbered from 1 with
thought / action / observation sharing the step index, some nested sub-agent steps at depth 1, some tool errors,
some repeated actions, a few without a final answer). The same (n, seed) gives the same traces; every task
starts with a unique `[#NNNN]` tag so a test endpoint can tell traces apart. Not the bundled corpus (that is
`trajfm synth`); just realistic enough in shape and size (a few kB each) to exercise a judge.
"""

from __future__ import annotations

import json
import random

from trajfm.traces.model import Step, Trace

_ASSETS = ("Chiller 6", "Chiller 9", "AHU 3", "Pump 12", "Boiler 2", "Cooling Tower 4")
_SENSORS = ("supply temperature", "condenser flow", "power input", "vibration", "return temperature")
_AGENTS = ("IoTAgent", "FMSRAgent", "TSFMAgent", "WorkOrderAgent")


def synthetic_traces(n: int, seed: int = 0, *, min_steps: int = 2, max_steps: int = 7) -> list[Trace]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        asset, sensor, agent = rng.choice(_ASSETS), rng.choice(_SENSORS), rng.choice(_AGENTS)
        task = f"[#{i:04d}] What was the average {sensor} of {asset} last week, and is it within its normal range?"
        steps: list[Step] = []
        n_steps = rng.randint(min_steps, max_steps)
        error_at = rng.randint(1, n_steps) if rng.random() < 0.35 else None
        repeat_at = rng.randint(2, n_steps) if n_steps >= 2 and rng.random() < 0.25 else None
        for k in range(1, n_steps + 1):
            pos = len(steps)
            action = f"Tool Name: {agent} , Tool Parameter: Action Input 1: request=get {sensor} of {asset} (part {k})"
            if repeat_at == k:
                action = steps[-2].content if len(steps) >= 2 else action
            observation: str
            if error_at == k:
                observation = (
                    f"Error encountered: sensor '{sensor}' not found for asset '{asset}' in site MAIN"
                )
            else:
                values = [round(rng.uniform(3.0, 12.0), 2) for _ in range(rng.randint(20, 60))]
                observation = json.dumps(
                    {
                        "answer": f"Retrieved {len(values)} readings of {sensor} for {asset}.",
                        "review": {
                            "status": "Accomplished",
                            "reasoning": "The data was returned.",
                            "suggestions": "",
                        },
                        "final_result": values,
                    }
                )
            steps.append(
                Step(
                    pos,
                    k,
                    "thought",
                    f"I need the {sensor} readings of {asset} for step {k}.",
                    agent="MetaAgent",
                )
            )
            steps.append(Step(pos + 1, k, "action", action, agent="MetaAgent", tool_name=agent))
            steps.append(
                Step(pos + 2, k, "observation", observation, agent="MetaAgent", is_error=error_at == k)
            )
            if rng.random() < 0.3:
                parent = steps[-1].step_id
                steps.append(
                    Step(
                        pos + 3,
                        k,
                        "thought",
                        f"Looking up {sensor} in the {agent} catalogue.",
                        agent=agent,
                        depth=1,
                        parent_id=parent,
                    )
                )
        final = (
            None if rng.random() < 0.08 else f"The average {sensor} of {asset} was {rng.uniform(3, 12):.2f}."
        )
        out.append(
            Trace(
                trace_id=f"synthetic/{i:04d}",
                source_path=f"synthetic/{i:04d}",
                source_format="synthetic",
                steps=steps,
                task=task,
                final_answer=final,
                agent_model="synthetic-model",
                multi_agent=True,
            )
        )
    return out
