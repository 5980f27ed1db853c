"""CDK stacks that deploy batchdrop: a stateful stack (data) and a stateless stack (compute)."""
