fn main() {
    std::process::exit(node::main_with_args(std::env::args_os()));
}
