module github.com/wmprom/wmprom/footprint

go 1.26.0
