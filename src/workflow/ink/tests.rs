use super::*;
use serde_json::{Number, Value, json};

fn ok(ty: &InkType, v: Value) -> InkValue {
    coerce(ty, &Constraints::default(), &v).expect("accepted")
}

#[test]
fn strings_become_numbers_and_booleans() {
    assert_eq!(ok(&InkType::Integer, json!("30")), InkValue::Integer(30));
    assert_eq!(ok(&InkType::Integer, json!(30.0)), InkValue::Integer(30));
    assert_eq!(ok(&InkType::Float, json!("0.5")), InkValue::Float(0.5));
    assert_eq!(ok(&InkType::Float, json!(2)), InkValue::Float(2.0));
    assert_eq!(
        ok(&InkType::Boolean, json!("true")),
        InkValue::Boolean(true)
    );
    assert_eq!(ok(&InkType::Boolean, json!("No")), InkValue::Boolean(false));
    assert_eq!(
        ok(&InkType::String, json!(12)),
        InkValue::String("12".into())
    );
    let e = coerce(&InkType::Integer, &Constraints::default(), &json!("3.5"))
        .expect_err("not int")
        .to_string();
    assert_eq!(e, "`3.5` is not an integer");
    let e = coerce(&InkType::Boolean, &Constraints::default(), &json!("maybe"))
        .expect_err("not bool")
        .to_string();
    assert_eq!(e, "`maybe` is not a boolean (true or false)");
}

#[test]
fn constraints_name_the_value_and_the_rule() {
    let c = Constraints {
        exclusive_minimum: Some(0.into()),
        ..Constraints::default()
    };
    assert_eq!(
        coerce(&InkType::Integer, &c, &json!(-5))
            .expect_err("refused")
            .to_string(),
        "-5 is not greater than the exclusive minimum 0"
    );
    assert_eq!(
        coerce(&InkType::Integer, &c, &json!(0))
            .expect_err("refused")
            .to_string(),
        "0 is not greater than the exclusive minimum 0"
    );
    assert_eq!(
        coerce(&InkType::Integer, &c, &json!(0)),
        Err(ValueError::Number {
            value: "0".into(),
            rule: NumberRule::ExclusiveMinimum,
            bound: "0".into(),
        })
    );
    let c = Constraints {
        minimum: Number::from_f64(0.0),
        maximum: Some(1.into()),
        multiple_of: Some(8.into()),
        ..Constraints::default()
    };
    assert_eq!(
        coerce(&InkType::Float, &c, &json!(1.5))
            .expect_err("max")
            .to_string(),
        "1.5 is greater than the maximum 1"
    );
    assert_eq!(
        coerce(&InkType::Float, &c, &json!(-0.5))
            .expect_err("min")
            .to_string(),
        "-0.5 is less than the minimum 0.0"
    );
    let c = Constraints {
        multiple_of: Some(8.into()),
        ..Constraints::default()
    };
    assert_eq!(
        coerce(&InkType::Integer, &c, &json!(100))
            .expect_err("mult")
            .to_string(),
        "100 is not a multiple of 8"
    );
    assert_eq!(
        ok_with(&InkType::Integer, &c, json!("64")),
        InkValue::Integer(64)
    );
    let c = Constraints {
        exclusive_maximum: Some(1.into()),
        ..Constraints::default()
    };
    assert_eq!(
        coerce(&InkType::Float, &c, &json!(1))
            .expect_err("xmax")
            .to_string(),
        "1.0 is not less than the exclusive maximum 1"
    );
    let c = Constraints {
        min_length: Some(2),
        max_length: Some(3),
        ..Constraints::default()
    };
    assert_eq!(
        coerce(&InkType::String, &c, &json!("a"))
            .expect_err("short")
            .to_string(),
        "`a` is shorter than the minimum length 2"
    );
    assert_eq!(
        coerce(&InkType::String, &c, &json!("abcd"))
            .expect_err("long")
            .to_string(),
        "`abcd` is longer than the maximum length 3"
    );
}

fn ok_with(ty: &InkType, c: &Constraints, v: Value) -> InkValue {
    coerce(ty, c, &v).expect("accepted")
}

#[test]
fn enums_accept_members_only_and_suggest_the_closest() {
    let ty = InkType::Enum(vec![json!("euler"), json!("euler_a"), json!("ddim")]);
    assert_eq!(ok(&ty, json!("ddim")), InkValue::Enum(json!("ddim")));
    let e = coerce(&ty, &Constraints::default(), &json!("eulr"))
        .expect_err("no")
        .to_string();
    assert_eq!(
        e,
        "`eulr` is not one of `euler`, `euler_a`, `ddim` (did you mean `euler`?)"
    );
    let ints = InkType::Enum(vec![json!(1), json!(2)]);
    assert_eq!(ok(&ints, json!("2")), InkValue::Enum(json!(2)));
}

#[test]
fn images_boards_colors_and_models_take_their_short_forms() {
    let img = InkValue::Image {
        image_name: "a.png".into(),
    };
    assert_eq!(ok(&InkType::Image, json!("a.png")), img);
    assert_eq!(ok(&InkType::Image, json!({"image_name": "a.png"})), img);
    assert_eq!(img.to_json(), json!({"image_name": "a.png"}));
    assert!(
        coerce(
            &InkType::Image,
            &Constraints::default(),
            &json!({"name": "a"})
        )
        .is_err()
    );
    assert_eq!(
        ok(&InkType::Board, json!("auto")),
        InkValue::Board(BoardChoice::Auto)
    );
    assert_eq!(
        ok(&InkType::Board, json!({"board_id": "b1"})).to_json(),
        json!({"board_id": "b1"})
    );
    assert_eq!(
        ok(&InkType::Color, json!("#ff000080")).to_json(),
        json!({"r": 255, "g": 0, "b": 0, "a": 128})
    );
    let model = json!({"key": "k", "hash": "h", "name": "n", "base": "sd-1", "type": "main"});
    let types = InkType::Model(vec!["main".into()]);
    assert_eq!(ok(&types, model.clone()).to_json(), model);
    assert_eq!(
        ok(&types, json!("Juggernaut")),
        InkValue::ModelName("Juggernaut".into())
    );
    let vae = json!({"key": "k", "hash": "h", "name": "v", "base": "sd-1", "type": "vae"});
    assert_eq!(
        coerce(&types, &Constraints::default(), &vae)
            .expect_err("wrong type")
            .to_string(),
        "model `v` is of type `vae`, this input takes `main`"
    );
}

#[test]
fn collections_convert_each_item_and_one_or_many_keeps_a_single_value() {
    let ty = InkType::Collection(Box::new(InkType::Integer));
    assert_eq!(
        ok(&ty, json!(["1", 2])),
        InkValue::Collection(vec![InkValue::Integer(1), InkValue::Integer(2)])
    );
    assert_eq!(
        coerce(&ty, &Constraints::default(), &json!([1, "x"]))
            .expect_err("bad item")
            .to_string(),
        "item 1: `x` is not an integer"
    );
    let ty = InkType::OneOrMany(Box::new(InkType::Float));
    assert_eq!(ok(&ty, json!("7.5")), InkValue::Float(7.5));
    assert_eq!(ok(&ty, json!([1, 2])).to_json(), json!([1.0, 2.0]));
}

#[test]
fn batchable_types_are_those_batch_data_carries() {
    assert!(InkType::Integer.is_batchable());
    assert!(InkType::Image.is_batchable());
    assert!(InkType::Collection(Box::new(InkType::String)).is_batchable());
    assert!(!InkType::Boolean.is_batchable());
    assert!(!InkType::Model(vec![]).is_batchable());
    assert!(!InkType::Board.is_batchable());
}
