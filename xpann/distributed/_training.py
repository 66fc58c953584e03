"""What ``fit`` adds in a world of several ranks: the checks before training, the share of each
global batch, the gradient all-reduce in the step plan, synchronised batch statistics, and the
once-per-epoch sums of losses and metrics."""

import zlib


class DataParallel:
    """Data-parallel training of ``plan`` over ``world``'s ranks."""

    def __init__(self, world, plan, backend):
        self.world, self.plan, self.backend = world, plan, backend
        self.global_rows = None
        self._dropout = [node for node in plan.nodes if node.layer.draws_per_row]
        for node in plan.nodes:
            if node.layer.batch_statistics:
                node.reduce_statistics = self._global_statistics
                node.reduce_sums = self._global_sums

    def check_alike(self, **facts):
        """Raise the same ValueError on every rank when ranks differ in any of ``facts``."""
        mine = {key: repr(value) for key, value in facts.items()}
        every = self.world.allgather(mine)
        for key in mine:
            values = [facts_of_rank[key] for facts_of_rank in every]
            if len(set(values)) > 1:
                listed = ", ".join(f"rank {r}: {value}" for r, value in enumerate(values))
                raise ValueError(f"Data-parallel training needs the same {key} on every rank, got {listed}.")

    def fingerprint(self, array):
        """A checksum of a device array's bytes (to compare data or weights across ranks)."""
        return zlib.crc32(self.backend.to_numpy(array).tobytes())

    def install(self):
        self.plan.gradient_reducers.append(self._reduce_gradient)

    def remove(self):
        self.plan.gradient_reducers.remove(self._reduce_gradient)
        for node in self.plan.nodes:
            node.reduce_statistics = node.reduce_sums = None
            node.batch_rows = None
        self.plan.loss_share = 1.0

    def before_step(self, offset, local_rows, global_rows):
        """This rank holds rows ``offset .. offset + local_rows`` of a global batch of ``global_rows``."""
        self.global_rows = global_rows
        self.plan.loss_share = local_rows / global_rows  # the loss and its gradient, before backward
        for node in self._dropout:
            node.batch_rows = (offset, global_rows)

    def _reduce_gradient(self, plan):
        """The global batch's gradient: the sum over ranks of each rank's, whose loss was scaled
        by its rows over the global batch's."""
        self.world.allreduce(plan.parameters.grad, self.backend)

    def _global_statistics(self, x):
        """(rows, mean, x - mean, biased variance) of the global batch, from every rank's rows."""
        rows = self.global_rows
        total = x.sum(axis=0, dtype="float64")
        self.world.allreduce(total, self.backend)
        mean = (total / rows).astype(x.dtype)
        centered = x - mean
        squares = (centered * centered).sum(axis=0, dtype="float64")
        self.world.allreduce(squares, self.backend)
        return rows, mean, centered, (squares / rows).astype(x.dtype)

    def _global_sums(self, sums):
        xp = self.backend.xp
        both = xp.concatenate([part.astype("float64") for part in sums])
        self.world.allreduce(both, self.backend)
        half = both.shape[0] // 2
        return both[:half].astype(sums[0].dtype), both[half:].astype(sums[1].dtype)

    def reduce_epoch(self, step_losses, metrics):
        """Sum the epoch's per-step losses (already scaled by each rank's share) and the metrics'
        running sums over the ranks: one collective each, once per epoch."""
        self.world.allreduce(step_losses, self.backend)
        for metric in metrics:
            metric.reduce(self.world, self.backend)

    def follow_main(self, stop):
        """Rank 0's decision to stop, on every rank."""
        return bool(self.world.broadcast(bool(stop)))
