use poolscope::pool_task;

struct Counter(u32);

impl Counter {
    #[pool_task]
    fn bump(&self, by: u32) -> u32 {
        self.0 + by
    }
}

fn main() {
    let _ = Counter(1).bump(2);
}
