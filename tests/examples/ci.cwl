# A GitLab CI pipeline step fed by a prun step.
cwlVersion: v1.0
class: Workflow

inputs: []

outputs:
  outDS:
    type: string
    outputSource: pipeline/outDS

steps:
  build:
    run: prun
    in:
      opt_exec:
        default: "make -C src > build.log"
      opt_args:
        default: "--outputs build.log"
    out: [outDS]

  pipeline:
    run: gitlab
    in:
      opt_inDS:
        - build/outDS
      opt_site:
        default: "DEV_SITE"
      opt_ref:
        default: "main"
      opt_api:
        default: "https://gitlab.example.org/api/v4/projects"
      opt_projectID:
        default: 4242
      opt_triggerToken:
        default: "TRIGGER_TOKEN"
      opt_accessToken:
        default: "ACCESS_TOKEN"
      opt_input_location:
        default: "/data/ci/inputs"
    out: [outDS]
