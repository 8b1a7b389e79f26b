from core.bench import Bench
BENCH = Bench("startup", "todo", lambda p: None, lambda a: None)
