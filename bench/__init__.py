"""The Alerts v2 benchmark suite: `python bench/run.py --scale tiny|small|medium|large`."""
