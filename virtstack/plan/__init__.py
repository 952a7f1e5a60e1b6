"""Preview plans: the engine-event vocabulary, the plan model, and its renderings."""
