# Three steps in a row; the first and the last use Athena (the athena task template, --useAthenaPackages).
cwlVersion: v1.0
class: Workflow

inputs: []

outputs:
  outDS:
    type: string
    outputSource: summarise/outDS

steps:
  generate:
    run: prun
    in:
      opt_exec:
        default: "Gen_tf.py --maxEvents=200 --ecmEnergy=13600 --jobConfig=421356 --outputEVNTFile=evnt.pool.root --randomSeed=%RNDM:100"
      opt_args:
        default: "--outputs evnt.pool.root --nJobs 2"
      opt_useAthenaPackages:
        default: true
    out: [outDS]

  convert:
    run: prun
    in:
      opt_inDS: generate/outDS
      opt_exec:
        default: "convert.sh %IN > ntuple.root"
      opt_args:
        default: "--outputs ntuple.root"
    out: [outDS]

  summarise:
    run: prun
    in:
      opt_inDS: convert/outDS
      opt_exec:
        default: "summarise.sh %IN > summary.txt"
      opt_args:
        default: "--outputs summary.txt --athenaTag AnalysisBase,25.2.30"
      opt_useAthenaPackages:
        default: true
    out: [outDS]
