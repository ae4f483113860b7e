fn main() {
    std::process::exit(clusterctl::run(std::env::args_os()));
}
