# A loop: iterate_body.cwl runs again and again while its junction step `decide` answers to_continue (results.json).
cwlVersion: v1.0
class: Workflow

requirements:
  SubworkflowFeatureRequirement: {}

inputs: []

outputs:
  outDS:
    type: string
    outputSource: publish/outDS

steps:
  start:
    run: prun
    in:
      opt_exec:
        default: "init.sh %RNDM:10 > start.txt"
      opt_args:
        default: "--outputs start.txt --nJobs 2 --avoidVP"
    out: [outDS]

  refine:
    run: iterate_body.cwl
    in:
      dataset: start/outDS
    out: [outDS]
    hints:
      - loop

  publish:
    run: prun
    in:
      opt_inDS: refine/outDS
      opt_exec:
        default: "cp %IN final.root"
      opt_args:
        default: "--outputs final.root --forceStaged"
    out: [outDS]
