//! What the walk knows of each part of an expression: its [`Shape`] in terms of the
//! documented schema, and whether it reads `members`.

/// What a part of an expression is, as far as the documented schema tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Anything the schema says nothing about.
    Other,
    /// The policy's `vars`.
    Vars,
    /// The tool's `line`.
    Line,
    /// One entry of `members`.
    Member,
    /// One entry of a member's `numbers`.
    Number,
    /// A list of members (`members`, or a list made from it).
    Members,
    /// A list of numbers.
    Numbers,
    /// `[]`: becomes what is added to it.
    EmptyList,
}

impl Shape {
    /// What a value that is either `self` or `other` is.
    pub(super) fn join(self, other: Shape) -> Shape {
        match (self, other) {
            (a, b) if a == b => a,
            (Shape::EmptyList, x) | (x, Shape::EmptyList)
                if matches!(x, Shape::Members | Shape::Numbers) =>
            {
                x
            }
            _ => Shape::Other,
        }
    }

    /// What an element of this list is.
    pub(super) fn element(self) -> Shape {
        match self {
            Shape::Members => Shape::Member,
            Shape::Numbers => Shape::Number,
            _ => Shape::Other,
        }
    }

    /// What a list of these is.
    pub(super) fn list_of(self) -> Shape {
        match self {
            Shape::Member => Shape::Members,
            Shape::Number => Shape::Numbers,
            _ => Shape::Other,
        }
    }

    pub(super) fn is_list(self) -> bool {
        matches!(self, Shape::Members | Shape::Numbers | Shape::EmptyList)
    }
}

/// What the walk learns of one part of an expression.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub(super) shape: Shape,
    /// Whether it reads the policy's `members` (for the cost of loops).
    pub(super) members: bool,
}

impl Seen {
    pub(super) const OTHER: Seen = Seen {
        shape: Shape::Other,
        members: false,
    };

    pub(super) fn shape(shape: Shape) -> Seen {
        Seen {
            shape,
            members: false,
        }
    }
}
