//! The demo city for `serve --demo`: seeded once, when the database has no users.
//!
//! 鼓楼区 → 湖南路街道 → 山西路社区 / 青岛路社区 → four grids, twenty households per grid
//! (some tagged elderly_alone, veteran, disabled, low_income, child), an admin, a street
//! supervisor, a supervisor per community, four workers (`worker4` holds two grids) and three
//! department accounts (城管, 消防, 燃气). Passwords are random and returned for printing once.
//!
//! Invariant: households are written like any synced record (grid counter bumped,
//! record_index row, every field's version stamped by the server's HLC), so phones pull
//! them like anything else.

use std::fmt::Write as _;

use rand::Rng;

use crate::auth::password::hash_password;
use crate::db::areas::{insert_area, AreaLevel};
use crate::db::households::{create_on_server, HouseholdFields};
use crate::db::users::{self, NewUser, Role};
use crate::db::{write_transaction, DbConnection};
use crate::error::AppResult;

/// One seeded account, with its password in clear (shown once).
#[derive(Clone)]
pub struct DemoAccount {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Shown name.
    pub display_name: String,
    /// The password in clear.
    pub password: String,
    /// Grid ids.
    pub grid_ids: Vec<String>,
    /// Area id (supervisors).
    pub area_id: Option<String>,
    /// Department (department users).
    pub department: Option<String>,
}

impl std::fmt::Debug for DemoAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoAccount")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What was seeded.
#[derive(Debug, Clone)]
pub struct DemoSeed {
    /// Accounts with their passwords.
    pub accounts: Vec<DemoAccount>,
    /// (grid name, grid id).
    pub grids: Vec<(String, String)>,
    /// Households created.
    pub households: usize,
}

impl DemoSeed {
    /// A table of the accounts and grids, for the terminal.
    pub fn credentials_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Demo city seeded ({} households). Passwords are shown only now:",
            self.households
        );
        let _ = writeln!(
            out,
            "  {:<16} {:<11} {:<14} grids",
            "username", "role", "password"
        );
        for a in &self.accounts {
            let grids = if a.grid_ids.is_empty() {
                "-".to_owned()
            } else {
                a.grid_ids.join(",")
            };
            let _ = writeln!(
                out,
                "  {:<16} {:<11} {:<14} {}",
                a.username,
                a.role.as_str(),
                a.password,
                grids
            );
        }
        let _ = writeln!(out, "Grids:");
        for (name, id) in &self.grids {
            let _ = writeln!(out, "  {id}  {name}");
        }
        out
    }
}

/// Households per grid.
pub const HOUSEHOLDS_PER_GRID: usize = 20;

/// Seed the demo city unless the database already has users (then `None`).
pub fn seed_if_empty(conn: &mut DbConnection) -> AppResult<Option<DemoSeed>> {
    if users::count(conn)? > 0 {
        return Ok(None);
    }
    // Hash outside the write transaction: argon2 is slow and the write lock is precious.
    let mut accounts = planned_accounts();
    let hashes = accounts
        .iter()
        .map(|a| hash_password(&a.password))
        .collect::<AppResult<Vec<_>>>()?;
    write_transaction(conn, |conn| {
        if users::count(conn)? > 0 {
            return Ok(None);
        }
        let seed = seed(conn, &mut accounts, &hashes)?;
        Ok(Some(seed))
    })
}

struct GridPlan {
    name: &'static str,
    code: &'static str,
    road: &'static str,
}

const COMMUNITIES: [(&str, &str, [GridPlan; 2]); 2] = [
    (
        "山西路社区",
        "320106002001",
        [
            GridPlan {
                name: "山西路社区第一网格",
                code: "320106002001-01",
                road: "山西路",
            },
            GridPlan {
                name: "山西路社区第二网格",
                code: "320106002001-02",
                road: "湖北路",
            },
        ],
    ),
    (
        "青岛路社区",
        "320106002002",
        [
            GridPlan {
                name: "青岛路社区第一网格",
                code: "320106002002-01",
                road: "青岛路",
            },
            GridPlan {
                name: "青岛路社区第二网格",
                code: "320106002002-02",
                road: "上海路",
            },
        ],
    ),
];

fn seed(
    conn: &mut DbConnection,
    accounts: &mut [DemoAccount],
    hashes: &[String],
) -> AppResult<DemoSeed> {
    let district = insert_area(conn, "鼓楼区", Some("320106"), AreaLevel::District, None)?;
    let street = insert_area(
        conn,
        "湖南路街道",
        Some("320106002"),
        AreaLevel::Street,
        Some(&district.id),
    )?;
    let mut community_ids = Vec::new();
    let mut grids = Vec::new();
    let mut households = 0;
    for (community_name, community_code, grid_plans) in &COMMUNITIES {
        let community = insert_area(
            conn,
            community_name,
            Some(community_code),
            AreaLevel::Community,
            Some(&street.id),
        )?;
        community_ids.push(community.id.clone());
        for plan in grid_plans {
            let grid = insert_area(
                conn,
                plan.name,
                Some(plan.code),
                AreaLevel::Grid,
                Some(&community.id),
            )?;
            for i in 0..HOUSEHOLDS_PER_GRID {
                create_on_server(conn, &grid.id, household(plan.road, grids.len(), i))?;
                households += 1;
            }
            grids.push((plan.name.to_owned(), grid.id));
        }
    }

    // Scopes refer to the areas just created: fill them in by the plan's placeholders.
    for account in accounts.iter_mut() {
        account.grid_ids = account
            .grid_ids
            .iter()
            .filter_map(|idx| idx.parse::<usize>().ok())
            .filter_map(|idx| grids.get(idx).map(|(_, id)| id.clone()))
            .collect();
        account.area_id = match account.area_id.as_deref() {
            Some("street") => Some(street.id.clone()),
            Some(idx) => idx
                .parse::<usize>()
                .ok()
                .and_then(|i| community_ids.get(i).cloned()),
            None => None,
        };
    }
    for (account, hash) in accounts.iter().zip(hashes) {
        users::insert_user(
            conn,
            &NewUser {
                username: &account.username,
                password_hash: hash,
                display_name: Some(&account.display_name),
                role: account.role,
                area_id: account.area_id.as_deref(),
                department: account.department.as_deref(),
                grid_ids: &account.grid_ids,
            },
        )?;
    }
    Ok(DemoSeed {
        accounts: accounts.to_vec(),
        grids,
        households,
    })
}

/// The accounts, with grids as indexes into the grid list and areas as `street` or a
/// community index, resolved once the areas exist.
fn planned_accounts() -> Vec<DemoAccount> {
    let account = |username: &str,
                   role: Role,
                   display_name: &str,
                   grids: &[&str],
                   area: Option<&str>,
                   department: Option<&str>| DemoAccount {
        username: username.to_owned(),
        role,
        display_name: display_name.to_owned(),
        password: random_password(),
        grid_ids: grids.iter().map(|g| (*g).to_owned()).collect(),
        area_id: area.map(str::to_owned),
        department: department.map(str::to_owned),
    };
    vec![
        account("admin", Role::Admin, "系统管理员", &[], None, None),
        account(
            "street_sup",
            Role::Supervisor,
            "王建国",
            &[],
            Some("street"),
            None,
        ),
        account(
            "shanxi_sup",
            Role::Supervisor,
            "李秀英",
            &[],
            Some("0"),
            None,
        ),
        account(
            "qingdao_sup",
            Role::Supervisor,
            "张伟",
            &[],
            Some("1"),
            None,
        ),
        account("worker1", Role::Worker, "刘洋", &["0"], None, None),
        account("worker2", Role::Worker, "陈静", &["1"], None, None),
        account("worker3", Role::Worker, "杨帆", &["2"], None, None),
        account("worker4", Role::Worker, "赵磊", &["3", "2"], None, None),
        account(
            "chengguan",
            Role::Department,
            "城管执法中队",
            &[],
            None,
            Some("城管"),
        ),
        account(
            "xiaofang",
            Role::Department,
            "消防救援站",
            &[],
            None,
            Some("消防"),
        ),
        account(
            "ranqi",
            Role::Department,
            "燃气公司",
            &[],
            None,
            Some("燃气"),
        ),
    ]
}

fn random_password() -> String {
    // No look-alikes (0/O, 1/l/I): people type these from a terminal.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗",
];
const GIVEN: [&str; 16] = [
    "秀兰", "建华", "桂英", "志强", "玉梅", "国庆", "淑珍", "德明", "丽华", "振国", "凤英", "海涛",
    "金凤", "永明", "春梅", "宝山",
];

/// The `i`-th household of grid number `grid_no` on `road`.
fn household(road: &str, grid_no: usize, i: usize) -> HouseholdFields {
    let mut rng = rand::rng();
    let mut tags = Vec::new();
    if i % 6 == 0 {
        tags.push("elderly_alone".to_owned());
    }
    if i % 9 == 1 {
        tags.push("veteran".to_owned());
    }
    if i % 8 == 2 {
        tags.push("disabled".to_owned());
    }
    if i % 5 == 3 {
        tags.push("low_income".to_owned());
    }
    if i % 7 == 4 {
        tags.push("child".to_owned());
    }
    let care_level = if tags.iter().any(|t| t == "elderly_alone" || t == "disabled") {
        "key"
    } else if !tags.is_empty() {
        "attention"
    } else {
        "normal"
    };
    let members = if tags.iter().any(|t| t == "elderly_alone") {
        1
    } else {
        rng.random_range(2..=5)
    };
    let number = 10 + i / 6 * 2;
    let building = 1 + i % 3;
    let unit = 1 + i % 2;
    let room = 100 * (1 + i % 6) + 1 + i % 2;
    let notes = match tags.first().map(String::as_str) {
        Some("elderly_alone") => Some("独居，子女在外地，每周电话联系".to_owned()),
        Some("disabled") => Some("行动不便，需上门服务".to_owned()),
        Some("veteran") => Some("退役军人，优待证已办理".to_owned()),
        _ => None,
    };
    HouseholdFields {
        address: format!("{road}{number}号{building}栋{unit}单元{room}室"),
        building: Some(format!("{building}栋")),
        unit: Some(format!("{unit}单元")),
        room: Some(format!("{room}室")),
        head_name: Some(format!(
            "{}{}",
            SURNAMES[(i + grid_no * 7) % SURNAMES.len()],
            GIVEN[(i * 3 + grid_no) % GIVEN.len()]
        )),
        phone: Some(format!("139{:08}", rng.random_range(0..100_000_000u32))),
        members: Some(members),
        tags,
        care_level: Some(care_level.to_owned()),
        notes,
    }
}
