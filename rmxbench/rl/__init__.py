"""RL baselines rmxbench trains itself (GRPO on TRL): the trainer (:mod:`.grpo_trainer`), its health
verdict (:mod:`.grpo_health`) and stage (:mod:`.grpo_stage`); the recipe a spec declares is
:mod:`rmxbench.spec.grpo_recipe`."""
