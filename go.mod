module github.com/molt-os/molt

go 1.26

require golang.org/x/arch v0.23.0 // indirect
