-- `make spec`: busted only (no lint), for quick iterations.
os.exit(os.execute("busted --lua=lua5.4 " .. table.concat(arg, " ")) and 0 or 1)
