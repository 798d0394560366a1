"""The codegen engine: flow graphs compiled to Python source that runs on durable."""
