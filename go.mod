module github.com/molt-os/molt

go 1.26
