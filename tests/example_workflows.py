"""Small workflow descriptions the tests share (texts, so a test writes them where it needs them)."""

# native YAML: 'bottom' reads what 'top' writes
TWO_STEP_CHAIN = """name: chain
steps:
  top:
    type: prun
    args: "--outputs a.txt"
    exec: "echo a > a.txt"
  bottom:
    type: prun
    inDS: top/outDS
    args: "--outputs b.txt"
    exec: "cat %IN > b.txt"
"""
