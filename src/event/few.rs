//! [`Few`]: a list kept inline up to `N` items, on the heap past that. A sign-in's
//! `authenticationDetails` and `authenticationRequirementPolicies` hold one to three
//! items, so decoding them allocates nothing.
//!
//! Not `smallvec::SmallVec`: its storage names `A::Item`, which makes it invariant in its
//! lifetime, and an `Event<'a>` must stay covariant (the rules take `&Event<'_>` with a
//! shorter lifetime). An enum of an array and a `Vec` is covariant and needs no `unsafe`.

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

/// Up to `N` items inline (the unused slots hold `T::default()`), more on the heap.
#[derive(Clone)]
pub enum Few<T, const N: usize> {
    /// The first `len` slots are the items.
    Inline {
        /// The slots.
        slots: [T; N],
        /// How many are items.
        len: usize,
    },
    /// More than `N` items.
    Heap(Vec<T>),
}

impl<T: Default, const N: usize> Default for Few<T, N> {
    fn default() -> Self {
        Few::Inline {
            slots: std::array::from_fn(|_| T::default()),
            len: 0,
        }
    }
}

impl<T: Default, const N: usize> Few<T, N> {
    /// Appends an item, moving to the heap when the slots are full.
    pub fn push(&mut self, item: T) {
        match self {
            Few::Inline { slots, len } => match slots.get_mut(*len) {
                Some(slot) => {
                    *slot = item;
                    *len += 1;
                }
                None => {
                    let mut v: Vec<T> = Vec::with_capacity(N * 2 + 1);
                    v.extend(slots.iter_mut().map(std::mem::take));
                    v.push(item);
                    *self = Few::Heap(v);
                }
            },
            Few::Heap(v) => v.push(item),
        }
    }
}

impl<T, const N: usize> Deref for Few<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Few::Inline { slots, len } => slots.get(..*len).unwrap_or_default(),
            Few::Heap(v) => v,
        }
    }
}

impl<'f, T, const N: usize> IntoIterator for &'f Few<T, N> {
    type Item = &'f T;
    type IntoIter = std::slice::Iter<'f, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for Few<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq, const N: usize> PartialEq for Few<T, N> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Default, const N: usize> FromIterator<T> for Few<T, N> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut few = Few::default();
        for item in iter {
            few.push(item);
        }
        few
    }
}

impl<'de, T: Deserialize<'de> + Default, const N: usize> Deserialize<'de> for Few<T, N> {
    /// A JSON array, as a `Vec<T>` would be read.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Default, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Few<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut few = Few::default();
                while let Some(item) = seq.next_element()? {
                    few.push(item);
                }
                Ok(few)
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_to_the_heap_past_n_and_reads_like_a_vec() {
        let few: Few<u8, 2> = [1, 2].into_iter().collect();
        assert!(matches!(few, Few::Inline { len: 2, .. }));
        let many: Few<u8, 2> = [1, 2, 3].into_iter().collect();
        assert!(matches!(many, Few::Heap(_)));
        assert_eq!(&*many, &[1, 2, 3]);
        let read: Few<u8, 2> = serde_json::from_str("[4,5,6,7]").unwrap();
        assert_eq!(&*read, &[4, 5, 6, 7]);
        assert_eq!(Few::<u8, 2>::default().len(), 0);
    }
}
