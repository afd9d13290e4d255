"""TorchRL environments over world models, solutions as policies, the robot's
objective as a reward.

Why a package of its own: everything here faces TorchRL users (environments, policy
modules, transforms) and serves every world and every solver alike, so it belongs
neither to :mod:`empo.worlds` (world models) nor to :mod:`empo.learning` (solvers).
"""
