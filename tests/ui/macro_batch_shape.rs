use poolscope::{par_batch, pool_scope};

fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    more();
    pool_scope!(|pool| {
        let _ = par_batch!(pool);
        let _ = par_batch!(pool, blocking);
        let _ = par_batch!(pool, double(1));
        let _ = par_batch!(pool, {});
        let _ = par_batch!(pool, double(x) for x in 0..4, double(2));
        let _ = par_batch!(pool, in_flight = 2, [double(1), double(2)]);
        let _ = par_batch!(pool, on_complete = |_, _| {}, { double(1); double(2); });
        let _ = par_batch!(pool, in_flight = 0, double(x) for x in 0..);
        let _ = par_batch!(pool, {
            double(0); double(1); double(2); double(3); double(4); double(5); double(6);
            double(7); double(8); double(9); double(10); double(11); double(12);
        });
    });
}

fn more() {
    pool_scope!(|pool| {
        let _ = par_batch!();
        let _ = par_batch!(pool, double(x) for x);
    });
}
