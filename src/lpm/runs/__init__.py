"""Running a job: read inputs, compute with the layers below, write one output folder whole."""
