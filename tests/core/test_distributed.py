"""``core.train.distributed``: the identity in one process; real gloo collectives on two
ranks started by torchrun (shares, gathers, the agreed stop, rank 0's errors and results)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import torch

from cxr_desktop.core.train import distributed
from cxr_desktop.core.train.launch import torchrun_args

RANK_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from cxr_desktop.core.errors import CxrError
    from cxr_desktop.core.train import distributed

    out = {}
    with distributed.joined("cpu") as world:
        rows = np.arange(10, 17)  # 7 rows, sorted
        mine = distributed.share(rows)
        out["share"] = mine.tolist()
        logits = torch.from_numpy(mine.astype(np.float32))[:, None] * torch.tensor([1.0, -1.0])
        out["gathered"] = distributed.gather_shares(logits, len(rows)).tolist()
        calls = iter([False, world.rank == 1, False])
        stop = distributed.agreed(lambda: next(calls))
        out["stops"] = [stop(), stop(), stop()]
        out["broadcast"] = distributed.broadcast(f"from rank {world.rank}")
        out["on_main"] = distributed.on_main(lambda: torch.randn(1).item() * 0 + world.rank)
        def fail():
            raise CxrError("rank 0 could not open the data")
        try:
            distributed.on_main(fail)
        except CxrError as exc:
            out["error"] = str(exc)
        out["sums"] = distributed.sums([1.0, float(world.rank)])
        out["threads"] = torch.get_num_threads()
        out["world"] = [world.rank, world.size, world.local_rank, world.local_size]
    json.dump(out, open(sys.argv[1] + f"/rank{world.rank}.json", "w"))
""")


def test_single_process_helpers_are_the_identity():
    world = distributed.world()
    assert world == distributed.World() and world.is_main and not world.enabled
    rows = np.array([3, 1, 2])
    assert distributed.share(rows) is rows
    logits = torch.ones(3, 2)
    assert distributed.gather_shares(logits, 3) is logits
    assert distributed.broadcast(5) == 5 and distributed.on_main(lambda: "x") == "x"
    assert distributed.agreed(bool) is bool and distributed.sums([1.0]) == [1.0]
    with distributed.joined("cpu") as joined:
        assert joined == distributed.World()


def test_two_ranks_share_gather_and_agree(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    args = torchrun_args(2, [])[:3] + [str(script), str(tmp_path)]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # Padded with the last row to 8, dealt alternately: sorted shares of equal length.
    assert ranks[0]["share"] == [10, 12, 14, 16] and ranks[1]["share"] == [11, 13, 15, 16]
    expected = [[float(r), -float(r)] for r in range(10, 17)]
    assert all(rank["gathered"] == expected for rank in ranks)
    # Rank 1's stop on the second call stops both ranks at that call, and only there.
    assert all(rank["stops"] == [False, True, False] for rank in ranks)
    assert all(rank["broadcast"] == "from rank 0" and rank["on_main"] == 0 for rank in ranks)
    assert all(rank["error"] == "rank 0 could not open the data" for rank in ranks)
    assert all(rank["sums"] == [2.0, 1.0] for rank in ranks)
    cores = distributed.cpu_cores()
    assert all(rank["threads"] == max(1, cores // 2) for rank in ranks)
    assert [rank["world"] for rank in ranks] == [[0, 2, 0, 2], [1, 2, 1, 2]]
