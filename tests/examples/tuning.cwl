# A chain of conditions around a hyperparameter optimisation (phpo) step: each step runs only on its parent's output.
cwlVersion: v1.2
class: Workflow

requirements:
  InlineJavascriptRequirement: {}

inputs: []

outputs:
  outDS:
    type: string
    outputSource: evaluate/outDS

steps:
  prepare:
    run: prun
    in:
      opt_exec:
        default: "python prepare.py --events 1000 > training.h5"
      opt_args:
        default: "--outputs training.h5 --nJobs 1"
    out: [outDS]

  optimise:
    run: phpo
    in:
      opt_trainingDS: prepare/outDS
      opt_args:
        default: "--loadJson search_space.json --maxPoints 20 --nParallel 4"
    out: [outDS]
    when: $(self.opt_trainingDS)

  evaluate:
    run: prun
    in:
      opt_inDS: optimise/outDS
      opt_exec:
        default: "python evaluate.py %IN > scores.json"
      opt_args:
        default: "--outputs scores.json"
    out: [outDS]
    when: $(self.opt_inDS)
