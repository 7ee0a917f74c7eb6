std = "lua54"
max_line_length = 120
codes = true
exclude_files = { "build/", "build-*/", "docs/html/" }
files["spec/"] = { std = "+busted" }
files["scripts/aqstore"] = {}
