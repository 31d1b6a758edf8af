"""RL baselines rmxbench trains itself (GRPO on TRL): recipe (:mod:`.grpo_config`) and stage
(:mod:`.grpo_trainer`)."""
